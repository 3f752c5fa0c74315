/// Log data sector, [MS-VHDX] 2.3.2; 4096 bytes, one per data descriptor, in descriptor order.
///
/// | Off  | Size | Field        | Rule                                |
/// |------|------|--------------|-------------------------------------|
/// | 0    | 4    | Signature    | "data"                              |
/// | 4    | 4    | SequenceHigh | SequenceNumber >> 32                |
/// | 8    | 4084 | Data         | bytes 8..4091 of the 4 KiB update   |
/// | 4092 | 4    | SequenceLow  | SequenceNumber & 0xFFFFFFFF         |
///
/// The update is LeadingBytes (from the descriptor) + Data + TrailingBytes.
public struct LogDataSector: Equatable, Sendable {
    public static let encodedSize = 4096
    public var sequenceHigh: UInt32
    public var data: [UInt8]
    public var sequenceLow: UInt32

    public var sequenceNumber: UInt64 { UInt64(sequenceHigh) << 32 | UInt64(sequenceLow) }

    public init(sequenceNumber: UInt64, update: [UInt8]) {
        sequenceHigh = UInt32(truncatingIfNeeded: sequenceNumber >> 32)
        sequenceLow = UInt32(truncatingIfNeeded: sequenceNumber)
        data = Array(update[8..<4092])
    }

    public init(parsing r: inout ByteReader) throws(FormatError) {
        try r.expectSignature(Signature.dataSector)
        sequenceHigh = try r.readUInt32("sequenceHigh")
        data = try r.readBytes(4084, "data")
        sequenceLow = try r.readUInt32("sequenceLow")
    }

    public func encode(into w: inout ByteWriter) {
        w.write(Signature.dataSector)
        w.write(sequenceHigh)
        w.write(data)
        w.write(sequenceLow)
    }

    /// Rebuilds the 4 KiB sector image the descriptor and this sector describe.
    public func update(leadingBytes: UInt64, trailingBytes: UInt32) -> [UInt8] {
        var w = ByteWriter(capacity: 4096)
        w.write(leadingBytes)
        w.write(data)
        w.write(trailingBytes)
        return w.bytes
    }
}
