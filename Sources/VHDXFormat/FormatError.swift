/// A structural problem found while decoding bytes read from a VHDX file.
///
/// Carries what failed (`structure`, `field`), where (`fileOffset`, absolute in the file when the
/// caller knew it) and why (`code`, machine-readable, plus a human `detail`).
///
/// Equality: two format errors are equal when their `code`, `structure` and `field` are equal —
/// what is wrong and with which field; `fileOffset` and `detail` are ignored, so tests can compare
/// against a freshly made error. (Engine, tracking and export errors are equal by code or reason
/// alone: they name no structure.)
public struct FormatError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong with the bytes. The raw value is the words the description prints.
    public enum Code: String, Hashable, Sendable, CustomStringConvertible {
        /// Fewer bytes than the structure needs.
        case truncated = "truncated"
        /// The signature is not the structure's.
        case badSignature = "bad signature"
        /// The stored checksum does not match the bytes.
        case badChecksum = "bad checksum"
        /// A field the format reserves is not zero.
        case reservedNonZero = "reserved field not zero"
        /// A value outside what the format allows.
        case outOfRange = "value out of range"
        /// An offset or length not on the boundary the format requires.
        case misaligned = "misaligned"
        /// Valid, but something this implementation refuses by rule (a version, a required item).
        case unsupported = "unsupported"
        /// Fields that contradict each other.
        case inconsistent = "inconsistent"
        /// The code as words.
        public var description: String { rawValue }
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
