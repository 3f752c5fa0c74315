import VHDX
import VHDXFormat

/// One thing `check` found about a set (its file, its links, its backing files).
public struct SetFinding: Sendable, CustomStringConvertible {
    public enum Severity: String, Sendable { case corruption, note }
    public var severity: Severity
    public var message: String
    public var path: String?
    public var description: String { (path.map { "\($0): " } ?? "") + message }
}

extension VHDSet {
    /// Everything about the set that is not a backing file's own structure (the CLI checks
    /// the leaf's chain with the engine's checker too): the other copy of the set file, every
    /// snapshot's file (present, unmodified), the leaf's chain matching the set, what an
    /// interrupted operation left.
    public func check() -> [SetFinding] {
        var out: [SetFinding] = []
        if let c = copyProblem { out.append(SetFinding(severity: .corruption, message: c, path: path)) }
        for e in record.snapshots {
            if let p = problem(with: e) { out.append(SetFinding(severity: .corruption, message: p.message, path: p.path)) }
        }
        do { _ = try openLeaf() } catch {
            out.append(SetFinding(severity: .corruption, message: "the active leaf's chain cannot be opened: \(error.message)", path: error.path))
        }
        if let p = record.pending {
            out.append(SetFinding(severity: .note, message: "an interrupted \(p.kind) is pending; the next command that writes to the set completes it", path: path))
        }
        if !record.unlinkQueue.isEmpty {
            out.append(SetFinding(severity: .note, message: "\(record.unlinkQueue.count) unused file(s) wait to be deleted by the next command that writes to the set", path: path))
        }
        return out
    }
}

extension PendingOperation.Kind: CustomStringConvertible {
    public var description: String {
        switch self {
        case .checkpoint: "checkpoint"
        case .apply: "apply"
        case .delete: "delete"
        }
    }
}
