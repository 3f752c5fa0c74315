import Foundation
import PropertyBased
import Testing
import VHDX
@testable import VHDXExport
import VHDXFormat
import VHDXTestSupport

/// The merge inside `consolidate` on made-up chains, where what exports rarely make is easy to
/// make: a different digest block per input, sizes inside a block, grows no record covers,
/// records of every length. What it writes must be a valid full stream's records (§4) whose
/// bytes are what restore's rule gives, and every input record must be read exactly once.
@Suite struct ChainSweepTests {
    struct Input {
        var size: UInt64
        var digestBlock: UInt64
        var records: [RawRecord]
    }

    /// A made-up chain: input 0 a full one, the others incrementals with random extents.
    static func chain(_ rng: inout SplitMix, inputs: Int) -> [Input] {
        var out: [Input] = []
        for k in 0..<inputs {
            let d = UInt64(512) << (rng.next() % 5)  // 512 B … 8 KiB
            let size = UInt64(1 + rng.next() % 96) * 512  // up to 48 KiB, any sector count
            var records: [RawRecord] = []
            var at: UInt64 = 0
            let id = GUID.random()
            while at < size {
                if k > 0, rng.next() % 3 == 0 { at += UInt64(1 + rng.next() % 4) * d; continue }  // a gap
                var length = min(UInt64(1 + rng.next() % 6) * d, size - at)
                length = min(length, 16 * d)
                let zero = rng.next() % 4 == 0
                var bytes: [UInt8] = []
                var digests: [UInt8] = []
                if !zero {
                    bytes = rng.bytes(Int(length))
                    digests = Self.sha256(bytes, block: d)
                }
                let crc = CRC32C.update(CRC32C.update(0, digests), bytes)
                let h = RecordHeader(streamID: id, index: UInt64(records.count + 1), kind: zero ? .zero : .data, flags: 0,
                                     bodyLength: UInt32(digests.count + bytes.count), offset: at, length: length, bodyCRC: zero ? 0 : crc)
                records.append(RawRecord(header: h, digests: digests, payload: bytes, position: at))
                at += length
            }
            out.append(Input(size: size, digestBlock: d, records: records))
        }
        return out
    }

    /// One SHA-256 per `block` bytes (a block no input covers takes the hashing path).
    static func sha256(_ bytes: [UInt8], block: UInt64) -> [UInt8] {
        MergedRecord.blockDigests(bytes, at: 0, parts: [RecordAssembler.Part(offset: 0, length: UInt64(bytes.count), source: nil, sourceDigestBlock: block)],
                                  digestBlock: block)
    }

    /// Restore's rule, step by step (Restorer.fromStreams): a shrink zeroes what it cut, records
    /// write their bytes, everything clipped to the last size.
    static func model(_ inputs: [Input]) -> [UInt8] {
        let f = Int(inputs.last!.size)
        var disk = [UInt8](repeating: 0, count: f)
        var size = Int(inputs[0].size)
        for i in inputs {
            let s = Int(i.size)
            if s < size, s < f { for x in s..<min(size, f) { disk[x] = 0 } }
            size = s
            for r in i.records where Int(r.header.offset) < f {
                let o = Int(r.header.offset), n = min(Int(r.header.length), f - o)
                for x in 0..<n { disk[o + x] = r.header.kind == .zero ? 0 : r.payload[x] }
            }
        }
        return disk
    }

    /// Runs the merge; returns the problems found.
    static func check(_ inputs: [Input], outputBlock d: UInt64) -> [String] {
        var cursors = Array(repeating: 0, count: inputs.count)
        var sweep = ChainSweep(sizes: inputs.map(\.size)) { k in
            guard cursors[k] < inputs[k].records.count else { return nil }
            cursors[k] += 1
            return inputs[k].records[cursors[k] - 1]
        }
        let f = inputs.last!.size
        var assembler = RecordAssembler(digestBlock: d, finalSize: f, inputDigestBlocks: inputs.map(\.digestBlock))
        var specs: [RecordAssembler.Spec] = []
        var reads = 0
        var problems: [String] = []
        do {
            while let e = try sweep.next() {
                switch e {
                case .read: reads += 1
                case .piece(let p): specs += assembler.add(p)
                }
            }
        } catch { return ["the sweep threw \(error)"] }
        specs += assembler.finish()
        let total = inputs.reduce(0) { $0 + $1.records.count }
        if reads != total { problems.append("read \(reads) of \(total) records") }
        var disk = [UInt8](repeating: 0xee, count: Int(f))
        var at: UInt64 = 0
        var cache = InflatedCache()
        for s in specs {
            guard case .success(let r) = MergedRecord.encode(s, digestBlock: d, inflated: &cache) else { problems.append("encode failed"); continue }
            if r.offset != at { problems.append("record at \(r.offset), expected \(at)") }
            if r.offset % d != 0 || (r.length % d != 0 && r.offset + r.length != f) { problems.append("record \(r.offset)+\(r.length) not whole blocks of \(d)") }
            if r.kind == .data, r.length > min(16 * d, 64 << 20) { problems.append("data record of \(r.length) bytes") }
            guard r.offset + r.length <= f, r.offset >= at else { problems.append("record \(r.offset)+\(r.length) outside the \(f)-byte disk or out of order"); break }
            var bytes = [UInt8](repeating: 0, count: Int(r.length))
            if r.kind == .data {
                if r.flags & 1 != 0 {
                    let ok = r.payload.withUnsafeBytes { p in bytes.withUnsafeMutableBytes { Deflate.decompress(p, into: $0) } }
                    if !ok { problems.append("payload does not inflate") }
                } else {
                    bytes = r.payload
                }
                // Restore's own check of the record: CRC-32C, inflation, every block's SHA-256.
                let h = RecordHeader(streamID: .zero, index: 1, kind: .data, flags: r.flags, bodyLength: UInt32(r.bodyLength),
                                     offset: r.offset, length: r.length, bodyCRC: r.bodyCRC)
                if case .failure(let e) = DecodedExtent.decode(RawRecord(header: h, digests: r.digests, payload: r.payload, position: 0),
                                                             digestBlock: d, name: "merged") {
                    problems.append("record at \(r.offset): \(e)")
                }
            }
            disk.replaceSubrange(Int(r.offset)..<Int(r.offset + r.length), with: bytes)
            at = r.offset + r.length
        }
        if at != f { problems.append("records end at \(at), the disk at \(f)") }
        let expected = model(inputs)
        if disk != expected, let x = (0..<disk.count).first(where: { disk[$0] != expected[$0] }) {
            problems.append("differs from restore's rule at \(x) (sizes \(inputs.map(\.size)), blocks \(inputs.map(\.digestBlock)))")
        }
        return problems
    }

    @Test("random chains (mixed digest blocks, sizes inside blocks, gaps, grows and shrinks): valid records equal to restore's rule")
    func randomChains() async {
        await propertyCheck(count: TestScale.count(300), input: Gen.int(in: 0...Int(Int32.max))) { seed in
            var rng = SplitMix(seed: UInt64(seed))
            let inputs = Self.chain(&rng, inputs: 1 + Int(rng.next() % 7))
            let problems = Self.check(inputs, outputBlock: inputs.last!.digestBlock)
            #expect(problems.isEmpty, "seed \(seed): \(problems)")
        }
    }
}
