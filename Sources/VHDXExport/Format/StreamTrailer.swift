import VHDXFormat

/// The body of a stream's last record: counts, and the digest that makes any missing, extra,
/// reordered or spliced record detectable (EXPORT-FORMAT.md §5).
struct StreamTrailer: Equatable, Sendable {
    static let bodySize = 96
    /// Records before the trailer (the header record included).
    var records: UInt64 = 0
    var dataRecords: UInt64 = 0
    var zeroRecords: UInt64 = 0
    /// Bytes the data records hold, before compression.
    var dataBytes: UInt64 = 0
    var zeroBytes: UInt64 = 0
    /// Bytes of all records before the trailer as stored.
    var storedBytes: UInt64 = 0
    /// SHA-256 over every earlier record's 64-byte header and its block digests, in order.
    var digest: [UInt8] = [UInt8](repeating: 0, count: 32)

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: StreamTrailer.bodySize)
        for v in [records, dataRecords, zeroRecords, dataBytes, zeroBytes, storedBytes] { w.write(v) }
        w.write(digest)
        w.pad(to: StreamTrailer.bodySize)
        return w.bytes
    }

    static func decode(_ bytes: [UInt8], at position: UInt64) throws(FormatError) -> StreamTrailer {
        guard bytes.count == bodySize else {
            throw FormatError(.inconsistent, "export stream trailer", field: "body length", at: position, "\(bytes.count) bytes, expected \(bodySize)")
        }
        var r = ByteReader(bytes, base: position, structure: "export stream trailer")
        var t = StreamTrailer()
        t.records = try r.readUInt64("records")
        t.dataRecords = try r.readUInt64("data records")
        t.zeroRecords = try r.readUInt64("zero records")
        t.dataBytes = try r.readUInt64("data bytes")
        t.zeroBytes = try r.readUInt64("zero bytes")
        t.storedBytes = try r.readUInt64("stored bytes")
        t.digest = try r.readBytes(32, "digest")
        guard try r.readBytes(bodySize - 80, "reserved").allSatisfy({ $0 == 0 }) else {
            throw FormatError(.reservedNonZero, "export stream trailer", field: "reserved", at: position + 80, "bytes 80-95 must be zero")
        }
        return t
    }
}
