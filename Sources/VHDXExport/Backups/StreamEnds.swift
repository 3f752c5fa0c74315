import VHDXFormat

/// A stored stream known from its two ends alone: the header record at the front and the
/// trailer record at the end (EXPORT-FORMAT.md §3, §5), each checked by its CRC-32Cs, the
/// trailer's stream id and record count, and its count of bytes before it against the size.
/// What it says about the records between is only what the trailer claims; a restore, apply,
/// verify or consolidate checks them.
package struct StreamEnds: Sendable {
    package var header: StreamHeader
    package var bytes: UInt64
    /// Records before the trailer, data and zero bytes, from the trailer.
    package var records: UInt64
    package var dataBytes: UInt64
    package var zeroBytes: UInt64

    static let headerBytes = RecordHeader.size + StreamHeader.bodySize
    static let trailerBytes = RecordHeader.size + StreamTrailer.bodySize

    /// Throws `.notAnExport` when the source does not start with a stream record, `.damaged`
    /// when its header or trailer does not hold (a truncated stream, one still being written, a
    /// damaged one), `.io` when it cannot be read.
    package static func probe(_ source: RangedSource) throws(ExportError) -> StreamEnds {
        let name = source.name
        let size = try source.size()
        let head = try source.read(at: 0, count: headerBytes)
        guard head.count >= 8, Array(head[0..<8]) == RecordHeader.magic else {
            throw ExportError(.notAnExport, "not an export stream of this tool (no \"vhdxexp1\" record at its start)", path: name)
        }
        guard head.count == headerBytes else { throw ExportError(.damaged, "truncated inside the header record (\(head.count) bytes)", path: name) }
        let h: RecordHeader
        do { h = try RecordHeader.decode(Array(head[0..<RecordHeader.size]), at: 0) } catch {
            throw ExportError(.damaged, "the header record is damaged: \(error)", path: name)
        }
        let body = Array(head[RecordHeader.size...])
        guard h.kind == .header, h.index == 0, h.bodyLength == StreamHeader.bodySize, h.flags == 0, CRC32C.checksum(body) == h.bodyCRC else {
            throw ExportError(.damaged, "the first record is not an intact stream header", path: name)
        }
        let header: StreamHeader
        do { header = try StreamHeader.decode(body, at: UInt64(RecordHeader.size)) } catch {
            throw ExportError(.damaged, "the stream header is invalid: \(error)", path: name)
        }
        guard header.streamID == h.streamID else { throw ExportError(.damaged, "the header record's stream id differs from its header's", path: name) }

        let missing = "no intact trailer at its end: truncated, still being written, or damaged"
        guard size >= UInt64(headerBytes + trailerBytes) else { throw ExportError(.damaged, missing + " (\(size) bytes)", path: name) }
        let at = size - UInt64(trailerBytes)
        let tail = try source.read(at: at, count: trailerBytes)
        guard tail.count == trailerBytes, let th = try? RecordHeader.decode(Array(tail[0..<RecordHeader.size]), at: at),
              th.kind == .trailer, th.streamID == header.streamID, th.bodyLength == StreamTrailer.bodySize, th.flags == 0,
              th.offset == 0, th.length == 0 else {
            throw ExportError(.damaged, missing, path: name)
        }
        let tb = Array(tail[RecordHeader.size...])
        guard CRC32C.checksum(tb) == th.bodyCRC, let t = try? StreamTrailer.decode(tb, at: at + UInt64(RecordHeader.size)) else {
            throw ExportError(.damaged, "the trailer fails its checks (stream offset \(at))", path: name)
        }
        guard t.storedBytes == at, t.records == th.index, t.records == 1 + t.dataRecords + t.zeroRecords else {
            throw ExportError(.damaged, "the trailer does not match the stream (\(t.storedBytes) bytes and \(t.records) records before it by its count, the trailer at byte \(at) as record \(th.index))", path: name)
        }
        return StreamEnds(header: header, bytes: size, records: t.records, dataBytes: t.dataBytes, zeroBytes: t.zeroBytes)
    }
}
