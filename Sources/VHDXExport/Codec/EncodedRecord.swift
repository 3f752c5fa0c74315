import Crypto
import VHDX
import VHDXFormat

/// A record encoded by a worker, before it is numbered: its body (block digests, then the
/// payload as stored) and the body's checksum.
struct EncodedRecord: Sendable {
    var kind: RecordHeader.Kind
    var flags: UInt8 = 0
    var offset: UInt64
    var length: UInt64
    var body: [UInt8] = []
    var bodyCRC: UInt32 = 0
    /// Bytes at the start of `body` that are block digests (what the trailer digest covers).
    var digestBytes: Int = 0

    static func zero(offset: UInt64, length: UInt64) -> EncodedRecord {
        EncodedRecord(kind: .zero, offset: offset, length: length)
    }

    /// The records for `data` read at virtual `offset`: runs of all-zero digest blocks become
    /// zero records, the rest data records carrying a SHA-256 per digest block and the payload,
    /// compressed when that pays. Pure computation: runs on any thread.
    static func encode(_ data: UnsafeRawBufferPointer, at offset: UInt64, digestBlock: UInt64, compress: Bool) -> [EncodedRecord] {
        var out: [EncodedRecord] = []
        let d = Int(digestBlock)
        var i = 0
        while i < data.count {
            let zero = isAllZero(UnsafeRawBufferPointer(rebasing: data[i..<min(i + d, data.count)]))
            var j = i
            while j < data.count, isAllZero(UnsafeRawBufferPointer(rebasing: data[j..<min(j + d, data.count)])) == zero { j = min(j + d, data.count) }
            let piece = UnsafeRawBufferPointer(rebasing: data[i..<j])
            out.append(zero ? .zero(offset: offset + UInt64(i), length: UInt64(j - i))
                            : dataRecord(piece, at: offset + UInt64(i), digestBlock: d, compress: compress))
            i = j
        }
        return out
    }

    static func dataRecord(_ piece: UnsafeRawBufferPointer, at offset: UInt64, digestBlock d: Int, compress: Bool) -> EncodedRecord {
        var body: [UInt8] = []
        let blocks = (piece.count + d - 1) / d
        let packed = compress ? Deflate.compressIfWorth(piece) : nil
        body.reserveCapacity(blocks * 32 + (packed?.count ?? piece.count))
        for b in 0..<blocks {
            body.append(contentsOf: SHA256.hash(data: UnsafeRawBufferPointer(rebasing: piece[b * d..<min((b + 1) * d, piece.count)])))
        }
        if let packed { body.append(contentsOf: packed) } else { body.append(contentsOf: piece) }
        let crc = body.withUnsafeBytes { CRC32C.update(0, $0) }
        return EncodedRecord(kind: .data, flags: packed == nil ? 0 : RecordHeader.Flag.deflated, offset: offset, length: UInt64(piece.count),
                             body: body, bodyCRC: crc, digestBytes: blocks * 32)
    }
}
