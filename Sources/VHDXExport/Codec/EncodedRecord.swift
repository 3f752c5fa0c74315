internal import Crypto
import VHDX
import VHDXFormat

/// A record encoded by a worker, before it is numbered: its body in two parts (block digests,
/// then the payload as stored) and the body's checksum.
struct EncodedRecord: Sendable {
    var kind: RecordHeader.Kind
    var flags: UInt8 = 0
    var offset: UInt64
    var length: UInt64
    /// One SHA-256 per digest block (what the trailer digest covers).
    var digests: [UInt8] = []
    /// The bytes as they are, or deflated.
    var payload: [UInt8] = []
    var bodyCRC: UInt32 = 0

    var bodyLength: Int { digests.count + payload.count }

    static func zero(offset: UInt64, length: UInt64) -> EncodedRecord {
        EncodedRecord(kind: .zero, offset: offset, length: length)
    }

    /// The records for `data` read at virtual `offset`: runs of all-zero digest blocks become
    /// zero records, the rest data records carrying a SHA-256 per digest block and the payload,
    /// compressed when that pays. Pure computation: runs on any thread.
    static func encode(_ data: [UInt8], at offset: UInt64, digestBlock: UInt64, compress: Bool) -> [EncodedRecord] {
        var runs: [(Range<Int>, zero: Bool)] = []
        let d = Int(digestBlock)
        data.withUnsafeBytes { all in
            var i = 0
            while i < all.count {
                let end = min(i + d, all.count)
                let zero = isAllZero(UnsafeRawBufferPointer(rebasing: all[i..<end]))
                if let last = runs.last, last.zero == zero { runs[runs.count - 1].0 = last.0.lowerBound..<end } else { runs.append((i..<end, zero)) }
                i = end
            }
        }
        return runs.map { run in
            if run.zero { return .zero(offset: offset + UInt64(run.0.lowerBound), length: UInt64(run.0.count)) }
            // The whole chunk is one run most of the time: its array is the payload, not a copy.
            let piece = run.0.count == data.count ? data : Array(data[run.0])
            return dataRecord(piece, at: offset + UInt64(run.0.lowerBound), digestBlock: d, compress: compress)
        }
    }

    static func dataRecord(_ piece: [UInt8], at offset: UInt64, digestBlock d: Int, compress: Bool) -> EncodedRecord {
        let blocks = (piece.count + d - 1) / d
        var digests: [UInt8] = []
        digests.reserveCapacity(blocks * 32)
        let packed: [UInt8]? = piece.withUnsafeBytes { p in
            for b in 0..<blocks {
                digests.append(contentsOf: SHA256.hash(data: UnsafeRawBufferPointer(rebasing: p[b * d..<min((b + 1) * d, p.count)])))
            }
            return compress ? Deflate.compressIfWorth(p) : nil
        }
        let payload = packed ?? piece
        let crc = payload.withUnsafeBytes { p in digests.withUnsafeBytes { CRC32C.update(CRC32C.update(0, $0), p) } }
        return EncodedRecord(kind: .data, flags: packed == nil ? 0 : RecordHeader.Flag.deflated, offset: offset, length: UInt64(piece.count),
                             digests: digests, payload: payload, bodyCRC: crc)
    }
}
