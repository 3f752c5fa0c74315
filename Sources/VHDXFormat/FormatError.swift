/// A structural problem found while decoding bytes read from a VHDX file.
///
/// Carries what failed (`structure`, `field`), where (`fileOffset`, absolute in the file when the
/// caller knew it) and why (`code` plus a human `detail`). Equality ignores `detail`, so tests can
/// compare against a freshly made error.
public struct FormatError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let raw: String
        public static let truncated = Code(raw: "truncated")
        public static let badSignature = Code(raw: "bad signature")
        public static let badChecksum = Code(raw: "bad checksum")
        public static let reservedNonZero = Code(raw: "reserved field not zero")
        public static let outOfRange = Code(raw: "value out of range")
        public static let misaligned = Code(raw: "misaligned")
        public static let unsupported = Code(raw: "unsupported")
        public static let inconsistent = Code(raw: "inconsistent")
        public var description: String { raw }
    }

    public var code: Code
    public var structure: String
    public var field: String?
    public var fileOffset: UInt64?
    public var detail: String

    public init(_ code: Code, _ structure: String, field: String? = nil, at fileOffset: UInt64? = nil, _ detail: String) {
        self.code = code
        self.structure = structure
        self.field = field
        self.fileOffset = fileOffset
        self.detail = detail
    }

    public static func == (a: FormatError, b: FormatError) -> Bool {
        a.code == b.code && a.structure == b.structure && a.field == b.field
    }

    public var description: String {
        var s = structure
        if let field { s += ".\(field)" }
        if let fileOffset { s += " at file offset \(fileOffset) (0x\(String(fileOffset, radix: 16)))" }
        return "\(s): \(code): \(detail)"
    }
}
