import Crypto
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
        try emit(.header, flags: 0, offset: 0, length: 0, body: body, bodyCRC: CRC32C.checksum(body), digestBytes: body.count)
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
        try emit(r.kind, flags: r.flags, offset: r.offset, length: r.length, body: r.body, bodyCRC: r.bodyCRC, digestBytes: r.digestBytes)
    }

    /// Writes the trailer. Nothing may follow.
    func finish() throws(VHDXError) -> StreamTrailer {
        trailer.records = index
        trailer.storedBytes = written
        trailer.digest = Array(digest.finalize())
        let body = trailer.encode()
        try emit(.trailer, flags: 0, offset: 0, length: 0, body: body, bodyCRC: CRC32C.checksum(body), digestBytes: 0)
        return trailer
    }

    private func emit(_ kind: RecordHeader.Kind, flags: UInt8, offset: UInt64, length: UInt64, body: [UInt8], bodyCRC: UInt32,
                      digestBytes: Int) throws(VHDXError) {
        let h = RecordHeader(streamID: header.streamID, index: index, kind: kind, flags: flags, bodyLength: UInt32(body.count),
                             offset: offset, length: length, bodyCRC: bodyCRC).encode()
        if kind != .trailer {
            digest.update(data: h)
            body.withUnsafeBytes { digest.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<digestBytes])) }
        }
        try sink.append(h)
        if !body.isEmpty { try sink.append(body) }
        index += 1
        written += UInt64(h.count + body.count)
    }
}
