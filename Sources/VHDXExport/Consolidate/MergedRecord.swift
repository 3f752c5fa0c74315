internal import Crypto
import VHDX
import VHDXFormat

/// A consolidation's unit of work for a worker thread, in the result's order: the checks of
/// the input records read meanwhile (exactly restore's: `DecodedExtent.decode`) and the
/// records of the result that came due. Records are checked before any later job's output is
/// written, and a failed check stops the run before its job's records are written.
struct ConsolidateJob: Sendable {
    enum Task: Sendable {
        /// An input record to check: CRC-32C, inflation to its exact length, every block's SHA-256.
        case check(RawRecord, digestBlock: UInt64, name: String)
        case emit(RecordAssembler.Spec)
    }

    var tasks: [Task] = []
    /// Bytes of input bodies the tasks hold (what bounds a job's size).
    var bytes = 0

    mutating func append(_ t: Task) {
        tasks.append(t)
        switch t {
        case .check(let r, _, _): bytes += r.digests.count + r.payload.count
        case .emit(.build(_, let length, _)): bytes += Int(length)
        case .emit: break
        }
    }

    /// Pure computation (a worker): the result's records, or the first failure.
    func run(digestBlock: UInt64) -> Result<[EncodedRecord], ExportError> {
        var out: [EncodedRecord] = []
        var inflated = InflatedCache()
        for t in tasks {
            switch t {
            case .check(let r, let d, let name):
                if case .failure(let e) = DecodedExtent.decode(r, digestBlock: d, name: name) { return .failure(e) }
            case .emit(let spec):
                switch MergedRecord.encode(spec, digestBlock: digestBlock, inflated: &inflated) {
                case .success(let r): out.append(r)
                case .failure(let e): return .failure(e)
                }
            }
        }
        return .success(out)
    }
}

/// The bytes of input records a job's records take slices of, inflated once per job.
struct InflatedCache {
    private var last: (position: UInt64, index: UInt64, data: [UInt8])?

    /// The record's bytes: its payload as stored, or inflated (exactly its length, or nil).
    mutating func data(_ r: RawRecord) -> [UInt8]? {
        guard r.header.isDeflated else { return r.payload }
        if let last, last.position == r.position, last.index == r.header.index { return last.data }
        var data = [UInt8](repeating: 0, count: Int(r.header.length))
        let ok = r.payload.withUnsafeBytes { b in data.withUnsafeMutableBytes { o in Deflate.decompress(b, into: o) } }
        guard ok else { return nil }
        last = (r.position, r.header.index, data)
        return data
    }
}

enum MergedRecord {
    static func encode(_ spec: RecordAssembler.Spec, digestBlock d: UInt64, inflated: inout InflatedCache) -> Result<EncodedRecord, ExportError> {
        switch spec {
        case .zero(let offset, let length):
            return .success(.zero(offset: offset, length: length))
        case .copy(let r):
            // Unchanged: its digests, payload (compressed or not) and so its body CRC.
            return .success(EncodedRecord(kind: .data, flags: r.header.flags, offset: r.header.offset, length: r.header.length,
                                          digests: r.digests, payload: r.payload, bodyCRC: r.header.bodyCRC))
        case .build(let offset, let length, let parts):
            var bytes = [UInt8](repeating: 0, count: Int(length))
            for p in parts {
                guard let r = p.source else { continue }
                guard let data = inflated.data(r) else {
                    return .failure(ExportError(.damaged, "data record \(r.header.index) at virtual offset \(r.header.offset): its zlib payload does not inflate to exactly \(r.header.length) bytes (stream offset \(r.position))"))
                }
                let from = Int(p.offset - r.header.offset), to = Int(p.offset - offset)
                bytes.withUnsafeMutableBytes { o in
                    data.withUnsafeBytes { s in
                        (o.baseAddress! + to).copyMemory(from: s.baseAddress! + from, byteCount: Int(p.length))
                    }
                }
            }
            let digests = blockDigests(bytes, at: offset, parts: parts, digestBlock: d)
            let packed = bytes.withUnsafeBytes { Deflate.compressIfWorth($0) }
            let payload = packed ?? bytes
            let crc = payload.withUnsafeBytes { p in digests.withUnsafeBytes { CRC32C.update(CRC32C.update(0, $0), p) } }
            return .success(EncodedRecord(kind: .data, flags: packed == nil ? 0 : RecordHeader.Flag.deflated, offset: offset, length: length,
                                          digests: digests, payload: payload, bodyCRC: crc))
        }
    }

    /// One SHA-256 per D-byte block of `bytes` (at virtual `offset`). A block that is exactly a
    /// block of an input record with the same D takes that record's digest, checked with the
    /// record; any other block (a boundary inside it, another D, zeros) is hashed.
    static func blockDigests(_ bytes: [UInt8], at offset: UInt64, parts: [RecordAssembler.Part], digestBlock d: UInt64) -> [UInt8] {
        let end = offset + UInt64(bytes.count)
        var digests: [UInt8] = []
        digests.reserveCapacity(Int((UInt64(bytes.count) + d - 1) / d) * 32)
        var k = 0
        var bs = offset
        bytes.withUnsafeBytes { all in
            while bs < end {
                let be = min(bs + d, end)
                while parts[k].end <= bs { k += 1 }
                let p = parts[k]
                if let r = p.source, p.sourceDigestBlock == d, be <= p.end, (bs - r.header.offset) % d == 0,
                   min(d, r.header.offset + r.header.length - bs) == be - bs {
                    let i = Int((bs - r.header.offset) / d) * 32
                    digests.append(contentsOf: r.digests[i..<i + 32])
                } else {
                    digests.append(contentsOf: SHA256.hash(data: UnsafeRawBufferPointer(rebasing: all[Int(bs - offset)..<Int(be - offset)])))
                }
                bs = be
            }
        }
        return digests
    }
}
