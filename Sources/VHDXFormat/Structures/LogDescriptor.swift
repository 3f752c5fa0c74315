/// Log descriptors, [MS-VHDX] 2.3.1.2 (zero) and 2.3.1.3 (data); 32 bytes each.
///
/// Zero: | 0 | 4 | "zero" | 4 | 4 | Reserved | 8 | 8 | ZeroLength (4 KiB multiple) | 16 | 8 | FileOffset (4 KiB multiple) | 24 | 8 | SequenceNumber |
/// Data: | 0 | 4 | "desc" | 4 | 4 | TrailingBytes | 8 | 8 | LeadingBytes | 16 | 8 | FileOffset (4 KiB multiple) | 24 | 8 | SequenceNumber |
public enum LogDescriptor: Equatable, Sendable {
    case zero(reserved: UInt32, length: UInt64, fileOffset: UInt64, sequenceNumber: UInt64)
    case data(trailingBytes: UInt32, leadingBytes: UInt64, fileOffset: UInt64, sequenceNumber: UInt64)

    public static let encodedSize = 32

    public init(parsing r: inout ByteReader) throws(FormatError) {
        let at = r.fileOffset
        let sig = try r.readBytes(4, "signature")
        switch sig {
        case Signature.zeroDescriptor:
            self = .zero(reserved: try r.readUInt32("reserved"), length: try r.readUInt64("zeroLength"),
                         fileOffset: try r.readUInt64("fileOffset"), sequenceNumber: try r.readUInt64("sequenceNumber"))
        case Signature.dataDescriptor:
            self = .data(trailingBytes: try r.readUInt32("trailingBytes"), leadingBytes: try r.readUInt64("leadingBytes"),
                         fileOffset: try r.readUInt64("fileOffset"), sequenceNumber: try r.readUInt64("sequenceNumber"))
        default:
            throw FormatError(.badSignature, "log descriptor", field: "signature", at: at,
                              "expected \"zero\" or \"desc\", found \(hex(sig))")
        }
    }

    public func encode(into w: inout ByteWriter) {
        switch self {
        case let .zero(reserved, length, fileOffset, seq):
            w.write(Signature.zeroDescriptor); w.write(reserved); w.write(length); w.write(fileOffset); w.write(seq)
        case let .data(trailing, leading, fileOffset, seq):
            w.write(Signature.dataDescriptor); w.write(trailing); w.write(leading); w.write(fileOffset); w.write(seq)
        }
    }

    public var sequenceNumber: UInt64 {
        switch self { case let .zero(_, _, _, s), let .data(_, _, _, s): s }
    }

    public var fileOffset: UInt64 {
        switch self { case let .zero(_, _, o, _), let .data(_, _, o, _): o }
    }
}
