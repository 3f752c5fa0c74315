internal import Crypto
import VHDX
import VHDXFormat

/// Numbers records, writes them to a sink in order and ends the stream with its trailer.
final class StreamWriter {
    let sink: ByteSink
    let header: StreamHeader
    private var index: UInt64 = 0
    private var trailer = StreamTrailer()
    private var digest = SHA256()
    /// The stream's size so far.
    private(set) var written: UInt64 = 0

    init(sink: ByteSink, header: StreamHeader) throws(VHDXError) {
        self.sink = sink
        self.header = header
        let body = header.encode()
        try emit(.header, flags: 0, offset: 0, length: 0, digests: body, payload: [], bodyCRC: CRC32C.checksum(body))
    }

    func append(_ r: EncodedRecord) throws(VHDXError) {
        switch r.kind {
        case .data:
            trailer.dataRecords += 1
            trailer.dataBytes += r.length
        case .zero:
            trailer.zeroRecords += 1
            trailer.zeroBytes += r.length
        case .header, .trailer:
            preconditionFailure("only data and zero records are appended")
        }
        try emit(r.kind, flags: r.flags, offset: r.offset, length: r.length, digests: r.digests, payload: r.payload, bodyCRC: r.bodyCRC)
    }

    /// Writes the trailer. Nothing may follow.
    func finish() throws(VHDXError) -> StreamTrailer {
        trailer.records = index
        trailer.storedBytes = written
        trailer.digest = Array(digest.finalize())
        let body = trailer.encode()
        try emit(.trailer, flags: 0, offset: 0, length: 0, digests: [], payload: body, bodyCRC: CRC32C.checksum(body))
        try sink.drain()
        return trailer
    }

    /// A record: header, then its body as `digests` (which the trailer digest covers; for the
    /// header record, its whole body) and `payload`.
    private func emit(_ kind: RecordHeader.Kind, flags: UInt8, offset: UInt64, length: UInt64, digests: [UInt8], payload: [UInt8],
                      bodyCRC: UInt32) throws(VHDXError) {
        let bodyLength = digests.count + payload.count
        let h = RecordHeader(streamID: header.streamID, index: index, kind: kind, flags: flags, bodyLength: UInt32(bodyLength),
                             offset: offset, length: length, bodyCRC: bodyCRC).encode()
        if kind != .trailer {
            digest.update(data: h)
            digest.update(data: digests)
        }
        try sink.append(h)
        if !digests.isEmpty { try sink.append(digests) }
        if !payload.isEmpty { try sink.append(payload) }
        index += 1
        written += UInt64(h.count + bodyLength)
    }
}
