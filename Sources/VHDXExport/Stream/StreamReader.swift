internal import Crypto
internal import CZlib
import VHDX
import VHDXFormat

/// A record as read, its body not yet checked (that is `DecodedExtent`'s job, on a worker):
/// the block digests and the payload, read apart so neither is copied again.
struct RawRecord: Sendable {
    var header: RecordHeader
    var digests: [UInt8]
    var payload: [UInt8]
    /// Where the record starts in the stream, for messages.
    var position: UInt64
}

/// Reads a stream front to back and checks everything that needs its order: the header
/// first, every record of the same stream and numbered in sequence, extents in increasing
/// order without overlap, whole digest blocks, bodies of plausible size, and at the end the
/// trailer's counts and digest, then nothing after it. A full stream must cover the disk.
/// Any failure is `ExportError.damaged`, naming the record and its stream offset.
final class StreamReader {
    let source: any StreamInput
    let header: StreamHeader
    private(set) var trailer: StreamTrailer?
    private var index: UInt64 = 1
    private var nextOffset: UInt64 = 0
    private var digest = SHA256()
    private var counts = StreamTrailer()

    var name: String { source.name }
    /// Largest raw length of a data record: 16 digest blocks (at most 64 MiB).
    var maxDataLength: UInt64 { min(16 * header.digestBlock, 64 << 20) }

    /// `name` labels messages instead of `path` (a spool of standard input).
    init(path: String, name: String? = nil) throws(ExportError) {
        source = try StreamInputs.open(path, name: name)
        let first = try source.read(RecordHeader.size)
        guard first.count >= 8, Array(first[0..<8]) == RecordHeader.magic else {
            throw ExportError(.notAnExport, "not an export stream of this tool (no \"vhdxexp1\" record at its start)", path: source.name)
        }
        guard first.count == RecordHeader.size else {
            throw ExportError(.damaged, "truncated inside the header record (\(first.count) bytes)", path: source.name)
        }
        let h: RecordHeader
        do { h = try RecordHeader.decode(first, at: 0) } catch {
            throw ExportError(.damaged, "the header record is damaged: \(error)", path: source.name)
        }
        guard h.kind == .header, h.index == 0, h.bodyLength == StreamHeader.bodySize, h.flags == 0, h.offset == 0, h.length == 0 else {
            throw ExportError(.damaged, "the first record is not a stream header (kind \(h.kind), index \(h.index))", path: source.name)
        }
        let body = try source.read(Int(h.bodyLength))
        guard body.count == Int(h.bodyLength), CRC32C.checksum(body) == h.bodyCRC else {
            throw ExportError(.damaged, body.count < Int(h.bodyLength) ? "truncated inside the header record" : "the header record's body fails its CRC-32C", path: source.name)
        }
        do { header = try StreamHeader.decode(body, at: UInt64(RecordHeader.size)) } catch {
            throw ExportError(.damaged, "the stream header is invalid: \(error)", path: source.name)
        }
        guard header.streamID == h.streamID else {
            throw ExportError(.damaged, "the header record's stream id differs from its header's", path: source.name)
        }
        digest.update(data: first)
        digest.update(data: body)
        counts.storedBytes = UInt64(first.count + body.count)
    }

    /// The next data or zero record, or nil once the trailer was read and checked.
    func next() throws(ExportError) -> RawRecord? {
        guard trailer == nil else { return nil }
        let position = source.position
        let bytes = try source.read(RecordHeader.size)
        guard bytes.count == RecordHeader.size else {
            throw damaged(bytes.isEmpty ? "truncated: the stream ends after record \(index - 1) without its trailer"
                                        : "truncated inside the header of record \(index)", at: position)
        }
        let h: RecordHeader
        do { h = try RecordHeader.decode(bytes, at: position) } catch { throw damaged("record \(index): \(error)", at: position) }
        guard h.streamID == header.streamID else {
            throw damaged("record \(index) belongs to another stream {\(h.streamID)} (spliced?)", at: position)
        }
        guard h.index == index else {
            throw damaged("record \(h.index) found where record \(index) belongs (records reordered, duplicated or missing)", at: position)
        }
        try checkShape(h, at: position)
        let split = h.kind == .data ? digestBytes(h.length) : 0
        let digests = try source.read(split)
        let payload = digests.count == split ? try source.read(Int(h.bodyLength) - split) : []
        guard digests.count + payload.count == Int(h.bodyLength) else { throw damaged("truncated inside record \(index)", at: position) }
        if h.kind == .trailer { try finish(h, payload, at: position); return nil }
        digest.update(data: bytes)
        digest.update(data: digests)
        counts.storedBytes += UInt64(bytes.count) + UInt64(h.bodyLength)
        if h.kind == .data {
            counts.dataRecords += 1
            counts.dataBytes += h.length
        } else {
            counts.zeroRecords += 1
            counts.zeroBytes += h.length
        }
        nextOffset = h.offset + h.length
        index += 1
        return RawRecord(header: h, digests: digests, payload: payload, position: position)
    }

    func digestBytes(_ length: UInt64) -> Int { Int((length + header.digestBlock - 1) / header.digestBlock) * 32 }

    /// What a record's header must say given what came before it.
    private func checkShape(_ h: RecordHeader, at position: UInt64) throws(ExportError) {
        switch h.kind {
        case .header: throw damaged("a second header record (index \(h.index))", at: position)
        case .trailer:
            guard h.bodyLength == StreamTrailer.bodySize, h.flags == 0, h.offset == 0, h.length == 0 else {
                throw damaged("the trailer record's header is malformed (flags, offset, length or body length)", at: position)
            }
            return
        case .data, .zero: break
        }
        let d = header.digestBlock, size = header.virtualSize
        guard h.length > 0, h.offset < size, h.length <= size - h.offset else {
            throw damaged("record \(h.index) covers \(h.length) bytes at \(h.offset), outside the \(size)-byte disk", at: position)
        }
        guard h.offset >= nextOffset else {
            throw damaged("record \(h.index) at \(h.offset) overlaps or precedes the previous extent (ending at \(nextOffset)): extents out of order", at: position)
        }
        if !header.isIncremental && h.offset != nextOffset {
            throw damaged("record \(h.index) starts at \(h.offset) but the full export's previous extent ends at \(nextOffset): a gap", at: position)
        }
        guard h.offset % d == 0, h.length % d == 0 || h.offset + h.length == size else {
            throw damaged("record \(h.index) (\(h.length) bytes at \(h.offset)) is not whole \(d)-byte digest blocks", at: position)
        }
        if h.kind == .zero {
            guard h.bodyLength == 0, h.flags == 0 else { throw damaged("zero record \(h.index) has a body or flags", at: position) }
            return
        }
        guard h.length <= maxDataLength else {
            throw damaged("data record \(h.index) holds \(h.length) bytes, more than the \(maxDataLength) a record may", at: position)
        }
        let digests = UInt64(digestBytes(h.length))
        let most = h.isDeflated ? digests + UInt64(compressBound(uLong(h.length))) : digests + h.length
        guard h.bodyLength >= digests, h.bodyLength <= most, h.isDeflated || h.bodyLength == most else {
            throw damaged("data record \(h.index) has a \(h.bodyLength)-byte body, impossible for \(h.length) bytes", at: position)
        }
    }

    private func finish(_ h: RecordHeader, _ body: [UInt8], at position: UInt64) throws(ExportError) {
        guard CRC32C.checksum(body) == h.bodyCRC else { throw damaged("the trailer fails its CRC-32C", at: position) }
        let t: StreamTrailer
        do { t = try StreamTrailer.decode(body, at: position + 64) } catch { throw damaged("the trailer is invalid: \(error)", at: position) }
        var expected = counts
        expected.records = index
        expected.digest = Array(digest.finalize())
        guard t == expected else {
            throw damaged("the trailer does not match the records read (records \(t.records) vs \(expected.records), data bytes \(t.dataBytes) vs \(expected.dataBytes), digest \(t.digest == expected.digest ? "equal" : "differs")): records were changed, removed or added", at: position)
        }
        if !header.isIncremental && nextOffset != header.virtualSize {
            throw damaged("the full export ends at \(nextOffset), short of the \(header.virtualSize)-byte disk", at: position)
        }
        let extra = try source.read(1)
        guard extra.isEmpty else { throw damaged("bytes follow the trailer", at: source.position - 1) }
        trailer = t
    }

    private func damaged(_ what: String, at position: UInt64) -> ExportError {
        ExportError(.damaged, "\(what) (stream offset \(position))", path: source.name)
    }
}

/// A record's content after its checks: CRC-32C of the body, inflation to exactly its
/// length, and every block's SHA-256 against the one recorded at export.
struct DecodedExtent: Sendable {
    var kind: RecordHeader.Kind
    var offset: UInt64
    var length: UInt64
    /// Data records only.
    var data: [UInt8] = []
    /// Data records only: one SHA-256 per digest block.
    var digests: [UInt8] = []

    /// Pure computation, for workers. `name` only labels the error.
    static func decode(_ r: RawRecord, digestBlock: UInt64, name: String) -> Result<DecodedExtent, ExportError> {
        let h = r.header
        guard h.kind == .data else { return .success(DecodedExtent(kind: h.kind, offset: h.offset, length: h.length)) }
        func damaged(_ s: String) -> Result<DecodedExtent, ExportError> {
            .failure(ExportError(.damaged, "data record \(h.index) at virtual offset \(h.offset): \(s) (stream offset \(r.position))", path: name))
        }
        let crc = r.payload.withUnsafeBytes { p in r.digests.withUnsafeBytes { CRC32C.update(CRC32C.update(0, $0), p) } }
        guard crc == h.bodyCRC else { return damaged("its body fails its CRC-32C (stored \(hex32(h.bodyCRC)), computed \(hex32(crc)))") }
        let d = Int(digestBlock)
        let digests = r.digests
        var data: [UInt8]
        if h.isDeflated {
            data = [UInt8](repeating: 0, count: Int(h.length))
            let ok = r.payload.withUnsafeBytes { b in data.withUnsafeMutableBytes { o in Deflate.decompress(b, into: o) } }
            guard ok else { return damaged("its zlib payload does not inflate to exactly \(h.length) bytes") }
        } else {
            data = r.payload
        }
        let bad: Int? = data.withUnsafeBytes { b in
            for i in 0..<digests.count / 32 {
                let actual = SHA256.hash(data: UnsafeRawBufferPointer(rebasing: b[i * d..<min((i + 1) * d, b.count)]))
                if !actual.elementsEqual(digests[i * 32..<(i + 1) * 32]) { return i }
            }
            return nil
        }
        if let bad { return damaged("block \(bad) does not match its SHA-256 from the export") }
        return .success(DecodedExtent(kind: .data, offset: h.offset, length: h.length, data: data, digests: digests))
    }
}
