import VHDXChangeTracking
import VHDXExport

/// Exit codes of export, restore, apply and verify (README "Exit codes").
enum ExportExit {
    static let differs: Int32 = 1
    static let damaged: Int32 = 2
    static let refused: Int32 = 3
    static let needsFull: Int32 = 4

    /// The code for an error: damaged input 2, an export that does not go there 3, a base
    /// tracking cannot answer from 4, anything else 1.
    static func code(for error: Error) -> Int32 {
        let error = CarriedError.original(error)
        switch (error as? ExportError)?.reason {
        case .damaged?, .notAnExport?: return damaged
        case .wrongBase?, .alreadyApplied?, .otherDisk?, .interrupted?: return refused
        case .needsFull?: return needsFull
        default: return error is ChangeTrackingError ? needsFull : 1
        }
    }

    static func fail(_ error: Error) -> Never { Output.fail(error, code: code(for: error)) }

    /// An upload's parts for the JSON summaries: `{"parts-sent": N, "parts-reused": M}`, null for a file.
    static func json(_ parts: ObjectParts?) -> JSON {
        parts.map { .object([("parts-sent", .int(UInt64($0.sent))), ("parts-reused", .int(UInt64($0.reused)))]) } ?? .null
    }

    /// The text summaries' line for an upload ("" for a file), `label` padded to the block's column.
    static func uploadLine(_ parts: ObjectParts?, label: String) -> String {
        guard let parts else { return "" }
        let kept = parts.reused > 0 ? ", \(parts.reused) kept from an interrupted run" : ""
        return "\n  \(label)\(parts.sent) part\(parts.sent == 1 ? "" : "s") sent\(kept)"
    }

    /// "1.8 GiB in 2.1 s (870 MiB/s)".
    static func rate(_ bytes: UInt64, _ seconds: Double) -> String {
        let s = (seconds * 100).rounded() / 100
        guard seconds > 0 else { return "\(Output.humanSize(bytes)) in \(s) s" }
        return "\(Output.humanSize(bytes)) in \(s) s (\(Output.humanSize(UInt64(Double(bytes) / seconds)))/s)"
    }
}
