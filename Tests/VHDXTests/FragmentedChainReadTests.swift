import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

/// Reads of fragmented chains: every block PARTIALLY_PRESENT with many bitmap runs at every
/// depth, as `Scripts/bench-chain.sh` with BENCH_FRAG_WRITES makes them. The read path joins
/// a layer's pieces into one pread across the bytes of layers above (`ExtentGather`) and keeps
/// bitmap pages in memory (`SectorBitmapCache`); both must stay byte-exact against a model.
@Suite("Fragmented chain reads")
struct FragmentedChainReadTests {
    static let MiB: UInt64 = 1 << 20
    static let size: UInt64 = 6 * MiB

    /// A base (dynamic, 2 MiB blocks, pseudo-random data in blocks 0 and 2) and `depth`
    /// children (1 MiB blocks) in memory, each written with `writes` scattered sector runs
    /// (1-16 sectors) and a zeroed sector range, with the raw model of the top.
    static func chain(depth: Int = 4, writes: Int = 400, seed: UInt64 = 7) throws -> (top: VHDXFile, model: [UInt8]) {
        var rng = SplitMix(seed: seed)
        var model = [UInt8](repeating: 0, count: Int(size))
        let baseStorage = MemoryStorage()
        var o = CreateOptions(virtualSize: size)
        o.blockSize = UInt32(2 * MiB)
        try VHDXCreator.create(on: baseStorage, options: o)
        do {
            let base = try VHDXFile(storage: baseStorage)
            for block: UInt64 in [0, 2] {
                let bytes = (0..<Int(2 * MiB)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                try base.write(bytes, at: block * 2 * MiB)
                model.replaceSubrange(Int(block * 2 * MiB)..<Int((block + 1) * 2 * MiB), with: bytes)
            }
            try base.close()
        }
        var below = try VHDXFile(storage: MemoryStorage(baseStorage.bytes, writable: false))
        let empty = try emptyChild()
        for layer in 1...depth {
            let m = MemoryStorage(empty)
            let child = try VHDXFile(storage: m)
            child.parent = below
            for _ in 0..<writes {
                let sectors = Int.random(in: 1...16, using: &rng)
                let at = UInt64.random(in: 0..<(size / 512 - UInt64(sectors)), using: &rng) * 512
                let bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: layer * 16 + Int.random(in: 1...15, using: &rng)), count: sectors * 512)
                try child.write(bytes, at: at)
                model.replaceSubrange(Int(at)..<Int(at) + bytes.count, with: bytes)
            }
            // Zeros over the parent's data: ZERO runs inside partial blocks end every span.
            let z = UInt64.random(in: 0..<(size / 512 - 64), using: &rng) * 512
            try child.write([UInt8](repeating: 0, count: 64 * 512), at: z)
            model.replaceSubrange(Int(z)..<Int(z) + 64 * 512, with: repeatElement(0, count: 64 * 512))
            try child.close()
            let reopened = try VHDXFile(storage: MemoryStorage(m.bytes, writable: false))
            reopened.parent = below
            below = reopened
        }
        return (below, model)
    }

    /// The index (from the slice's start) of the first byte that differs, or nil; a count
    /// mismatch counts as a difference at the shorter end. Failures print this, not megabytes.
    static func firstDifference(_ got: [UInt8], _ want: ArraySlice<UInt8>) -> Int? {
        let w = Array(want)
        if let i = (0..<min(got.count, w.count)).first(where: { got[$0] != w[$0] }) { return i }
        return got.count == w.count ? nil : min(got.count, w.count)
    }

    /// An empty differencing image of `size` with 1 MiB blocks (made on files, where
    /// `createChild` works, then taken into memory).
    static func emptyChild() throws -> [UInt8] {
        let dir = Fixtures.tempPath("frag-empty")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var o = CreateOptions(virtualSize: size)
        o.blockSize = UInt32(2 * MiB)
        try VHDXCreator.create(path: dir + "/p.vhdx", options: o)
        var c = ChildOptions()
        c.blockSize = UInt32(MiB)
        try VHDXCreator.createChild(path: dir + "/c.avhdx", parentPath: dir + "/p.vhdx", options: c)
        return [UInt8](try #require(FileManager.default.contents(atPath: dir + "/c.avhdx")))
    }

    /// Whole-disk and odd reads equal the model, also when the joined reads are issued in
    /// small batches (the cap that bounds a large read's memory).
    @Test func readsEqualTheModel() throws {
        let (top, model) = try Self.chain()
        let extents = try top.resolvedExtents().count
        #expect(extents > 1500, "the chain is not fragmented: \(extents) extents")
        #expect(Self.firstDifference(try top.read(at: 0, count: Int(Self.size)), model[...]) == nil)
        for maxSpans in [1, 2, 7] {
            var out = [UInt8](repeating: 0xEE, count: Int(Self.size))
            try out.withUnsafeMutableBytes { b in try top.read(into: b, at: 0, maxSpans: maxSpans) }
            #expect(Self.firstDifference(out, model[...]) == nil, "batches of \(maxSpans)")
        }
        var rng = SplitMix(seed: 99)
        for _ in 0..<200 {
            let at = UInt64.random(in: 0..<Self.size, using: &rng)
            let n = Int.random(in: 1...Int(min(300_000, Self.size - at)), using: &rng)
            let got = try top.read(at: at, count: n)
            #expect(Self.firstDifference(got, model[Int(at)..<Int(at) + n]) == nil, "read of \(n) bytes at \(at)")
        }
    }

    /// `forEachChunk` tiles the disk in order: data pieces at most the chunk size and equal to
    /// the model, zero pieces where the model is zero.
    @Test func chunksTileTheDiskAndEqualTheModel() throws {
        let (top, model) = try Self.chain(depth: 3, writes: 150, seed: 11)
        var next: UInt64 = 0
        var dataPieces = 0, zeroPieces = 0
        try top.forEachChunk(size: 96 << 10) { (offset, length, bytes) throws(VHDXError) in
            #expect(offset == next)
            next = offset + length
            let want = model[Int(offset)..<Int(offset + length)]
            if let bytes {
                dataPieces += 1
                #expect(length <= 96 << 10)
                #expect(Self.firstDifference(Array(bytes), want) == nil, "chunk at \(offset)")
            } else {
                zeroPieces += 1
                #expect(want.allSatisfy { $0 == 0 }, "zero piece at \(offset) holds data in the model")
            }
        }
        #expect(next == Self.size)
        #expect(dataPieces > 0 && zeroPieces > 0)  // block 1 and 3 of the base are zeros below the writes
    }

    /// A writable child answers reads from its bitmap page cache; a write that sets new bits
    /// must drop the cached page, or the sectors just written would still read from the parent.
    @Test func aWriteAfterAReadIsSeenThroughTheBitmapCache() throws {
        let (parent, model) = try Self.chain(depth: 1, writes: 20, seed: 3)
        let m = MemoryStorage(try Self.emptyChild())
        let child = try VHDXFile(storage: m)
        child.parent = parent
        try child.write([UInt8](repeating: 0xA1, count: 512), at: 4096)       // block 0 partial
        #expect(try child.read(at: 0, count: 8192)[4096..<4608].allSatisfy { $0 == 0xA1 })
        #expect(child.bitmapPages.count == 1)
        try child.write([UInt8](repeating: 0xB2, count: 1024), at: 8192)       // new bits, same page
        let after = try child.read(at: 0, count: 16384)
        #expect(Self.firstDifference(Array(after[0..<4096]), model[0..<4096]) == nil)
        #expect(after[8192..<9216].allSatisfy { $0 == 0xB2 })
        #expect(Self.firstDifference(Array(after[9216..<16384]), model[9216..<16384]) == nil)
    }

    /// The page cache keeps at most `maxPages` pages, least recently used out first, and
    /// answers with the file's bytes.
    @Test func bitmapCacheIsBounded() throws {
        let pages = SectorBitmapCache.maxPages + 20
        let bytes = (0..<pages * 4096).map { UInt8(truncatingIfNeeded: $0 / 4096 &* 31 &+ $0) }
        let storage = MemoryStorage(bytes, writable: false)
        let cache = SectorBitmapCache()
        for p in 0..<pages {
            let page = try cache.page(UInt64(p) * 4096, from: storage)
            #expect(Array(page) == Array(bytes[p * 4096..<(p + 1) * 4096]))
            #expect(cache.count <= SectorBitmapCache.maxPages)
        }
        #expect(cache.count == SectorBitmapCache.maxPages)
    }
}
