import Foundation
import Testing
import PropertyBased
import VHDXFormat
import VHDXTestSupport
@testable import VHDXChangeTracking

/// The region's structures: round trips, every field's bounds, the run-list rules, change IDs.
@Suite("Tracking format")
struct TrackingFormatTests {
    static func header() -> TrackingHeader {
        var h = TrackingHeader(trackingID: .random(), virtualDiskID: .random(),
                               geometry: TrackingGeometry(granule: 64 << 10, historyLimit: 4, virtualSize: 1 << 30),
                               dataWriteGUID: .random(), virtualSize: 1 << 30, time: 1_700_000_000)
        h.currentEpoch = 6
        h.generationStartEpoch = 2
        h.records = (2...5).map { EpochRecord(epoch: $0, sealTime: 1_700_000_000 + $0, virtualSize: 1 << 30, slot: UInt32($0 - 2), runCount: 3, checksum: 7, flags: 0) }
        h.currentSlot = 4
        h.currentRunCount = 2
        h.resetCode = .foreignWriter
        h.resetText = "the disk was modified outside change tracking ✓"
        return h
    }

    static func decode(_ page: [UInt8]) throws(FormatError) -> TrackingHeader {
        try TrackingHeader(page: page, base: 0, logicalSectorSize: 512, blockSize: 32 << 20)
    }

    @Test func headerRoundTrip() throws {
        let h = TrackingFormatTests.header()
        let page = h.encode()
        #expect(page.count == 4096)
        #expect(try TrackingFormatTests.decode(page) == h)
    }

    /// Rewrites a field and fixes the checksum, so only the rule under test is broken.
    static func patched(_ edit: (inout [UInt8]) -> Void) -> [UInt8] {
        var page = header().encode()
        edit(&page)
        for i in 12..<16 { page[i] = 0 }
        let crc = CRC32C.checksum(page)
        for i in 0..<4 { page[12 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        return page
    }

    static func put(_ page: inout [UInt8], _ at: Int, _ v: UInt64, _ n: Int) {
        for i in 0..<n { page[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }

    static let damaged: [(String, [UInt8])] = [
        ("signature", { var p = header().encode(); p[0] ^= 1; return p }()),
        ("checksum", { var p = header().encode(); p[300] ^= 1; return p }()),
        ("version 2", patched { put(&$0, 8, 2, 4) }),
        ("granule not a power of two", patched { put(&$0, 48, 3 << 15, 8) }),
        ("granule below the sector", patched { put(&$0, 48, 256, 8) }),
        ("granule above the block", patched { put(&$0, 48, 64 << 20, 8) }),
        ("history 0", patched { put(&$0, 56, 0, 4) }),
        ("history 65", patched { put(&$0, 56, 65, 4) }),
        ("slot pages absurd", patched { put(&$0, 60, 1 << 30, 4) }),
        ("current epoch 0", patched { put(&$0, 112, 0, 8) }),
        ("current slot out of range", patched { put(&$0, 120, 99, 4) }),
        ("current slot shared with a record", patched { put(&$0, 120, 1, 4) }),
        ("runs without a slot", patched { put(&$0, 120, 0xFFFF_FFFF, 4) }),
        ("coarse unit not a power of two", patched { put(&$0, 144, 3 << 16, 8) }),
        ("coarse unit cannot cover the size", patched { put(&$0, 144, 64 << 10, 8); put(&$0, 136, 1 << 40, 8) }),
        ("generation start after the open epoch", patched { put(&$0, 152, 9, 8) }),
        ("reset code unknown", patched { put(&$0, 176, 9, 4) }),
        ("reset text too long", patched { put(&$0, 180, 300, 4) }),
        ("record count above history", patched { put(&$0, 512, 5, 4) }),
        ("record epochs not consecutive", patched { put(&$0, 520 + 48, 9, 8) }),
        ("record slot out of range", patched { put(&$0, 520 + 24, 77, 4) }),
        ("newest record not the open epoch's predecessor", patched { put(&$0, 112, 9, 8) }),
        ("record before the generation's start", patched { put(&$0, 152, 3, 8) }),
    ]

    @Test("every damaged header field is refused", arguments: damaged.map(\.0))
    func damagedHeader(_ name: String) throws {
        let page = TrackingFormatTests.damaged.first { $0.0 == name }!.1
        #expect(throws: FormatError.self) { try TrackingFormatTests.decode(page) }
    }

    @Test func changeIDRoundTripAndRejects() throws {
        let id = ChangeID(virtualDiskID: .random(), trackingID: .random(), generation: 3, epoch: 123_456)
        #expect(ChangeID(text: id.description) == id)
        #expect(id.description.utf8.count <= 110)
        #expect(id.description.hasPrefix("vhdxct1:"))
        let good = id.description
        for bad in ["", "rct1:x", good.replacingOccurrences(of: "vhdxct1", with: "vhdxct2"), good + ":1", String(good.dropLast()) + "x",
                    good.replacingOccurrences(of: ":3:", with: ":-3:"), good.uppercased(), String(repeating: "a", count: 300)] {
            #expect(ChangeID(text: bad) == nil, "\(bad)")
        }
    }

    @Test func runListRoundTripAndRules() throws {
        let runs = [GranuleRun(start: 0, count: 2), GranuleRun(start: 5, count: 1), GranuleRun(start: 300, count: 4096)]
        let bytes = RunList.encode(runs)
        #expect(bytes.count == 4096)
        let crc = RunList.checksum(runs)
        #expect(try RunList.decode(bytes, count: 3, checksum: crc, granuleLimit: 1 << 20, base: 0) == runs)
        // Unsorted, touching, empty, past the limit, a wrong checksum: each refused.
        for bad in [[GranuleRun(start: 5, count: 1), GranuleRun(start: 0, count: 2)],
                    [GranuleRun(start: 0, count: 2), GranuleRun(start: 2, count: 1)],
                    [GranuleRun(start: 0, count: 0)],
                    [GranuleRun(start: 1 << 20, count: 1)]] {
            #expect(throws: FormatError.self) {
                try RunList.decode(RunList.encode(bad), count: bad.count, checksum: RunList.checksum(bad), granuleLimit: 1 << 20, base: 0)
            }
        }
        #expect(throws: FormatError.self) { try RunList.decode(bytes, count: 3, checksum: crc ^ 1, granuleLimit: 1 << 20, base: 0) }
    }

    @Test("a stored set decodes to exactly its runs, as a run list or a bitmap, whichever is smaller")
    func storedSetRoundTrip() async {
        await propertyCheck(count: TestScale.count(100), input: zip(Gen.int(in: 0...3000), Gen.int(in: 1...40)).array(of: 0...300)) { marks in
            var set = GranuleSet()
            for (start, count) in marks { set.insert(UInt64(start)..<UInt64(start + count)) }
            let runs = set.runs()
            let e = StoredSet.encode(runs, slotBytes: 64 << 10)
            #expect(e.flags & StoredSet.Flag.coarsened == 0)
            #expect(e.bytes.count % 4096 == 0)
            if e.flags & StoredSet.Flag.bitmap != 0 { #expect(Int(e.count) < runs.count * 16, "a bitmap only when smaller") }
            let back = try StoredSet.decode(e.bytes, count: e.count, flags: e.flags, checksum: e.checksum, granuleLimit: 1 << 30, base: 0)
            #expect(back == runs)
        }
        // Too scattered for either encoding in 4 KiB: coarsened, still covering every run.
        let scattered = (0..<2000).map { GranuleRun(start: UInt64($0) * 100, count: 1) }
        let e = StoredSet.encode(scattered, slotBytes: 4096)
        #expect(e.flags & StoredSet.Flag.coarsened != 0)
        let back = try? StoredSet.decode(e.bytes, count: e.count, flags: e.flags, checksum: e.checksum, granuleLimit: 1 << 30, base: 0)
        for r in scattered { #expect(back?.contains { $0.start <= r.start && r.end <= $0.end } == true) }
        // A flipped byte fails the checksum.
        var bad = StoredSet.encode([GranuleRun(start: 3, count: 2)], slotBytes: 4096)
        bad.bytes[0] ^= 0x80
        #expect(throws: FormatError.self) { try StoredSet.decode(bad.bytes, count: bad.count, flags: bad.flags, checksum: bad.checksum, granuleLimit: 1 << 30, base: 0) }
    }

    @Test("coarsening covers every input granule and fits the capacity")
    func coarsenCovers() async {
        await propertyCheck(count: TestScale.count(100), input: Gen.int(in: 0...40).array(of: 1...200), Gen.int(in: 1...50)) { gaps, capacity in
            var runs: [GranuleRun] = []
            var at: UInt64 = 0
            for (i, g) in gaps.enumerated() {
                at += UInt64(g) + (runs.isEmpty ? 0 : 1)
                runs.append(GranuleRun(start: at, count: UInt64(i % 3 + 1)))
                at += UInt64(i % 3 + 1)
            }
            let out = RunList.coarsen(runs, to: capacity)
            #expect(out.count <= max(capacity, 1) || runs.count <= capacity)
            for r in runs {
                #expect(out.contains { $0.start <= r.start && r.end <= $0.end }, "run \(r) is not covered")
            }
            for i in out.indices.dropFirst() { #expect(out[i].start > out[i - 1].end) }
        }
    }

    @Test("the in-memory set gives back exactly the granules marked")
    func granuleSetMatchesModel() async {
        await propertyCheck(count: TestScale.count(100), input: zip(Gen.int(in: 0...20_000), Gen.int(in: 1...9000)).array(of: 1...30), Gen.int(in: 0...25_000)) { marks, clip in
            var set = GranuleSet()
            var model = Set<UInt64>()
            for (start, count) in marks {
                set.insert(UInt64(start)..<UInt64(start + count))
                for g in start..<start + count { model.insert(UInt64(g)) }
            }
            set.clip(below: UInt64(clip))
            model = model.filter { $0 < UInt64(clip) }
            let runs = set.runs()
            var got = Set<UInt64>()
            for r in runs { for g in r.start..<r.end { got.insert(g) } }
            #expect(got == model)
            for i in runs.indices.dropFirst() { #expect(runs[i].start > runs[i - 1].end, "runs must be merged") }
        }
    }

    @Test func geometrySizes() {
        let gib: UInt64 = 1 << 30
        #expect(TrackingGeometry(granule: 64 << 10, historyLimit: 16, virtualSize: gib).regionLength == 2 << 20)
        #expect(TrackingGeometry(granule: 64 << 10, historyLimit: 16, virtualSize: 256 * gib).regionLength == 2 << 20)
        #expect(TrackingGeometry(granule: 64 << 10, historyLimit: 16, virtualSize: 1024 * gib).regionLength == 5 << 20)
        #expect(TrackingGeometry(granule: 64 << 10, historyLimit: 16, virtualSize: 64 << 40).regionLength == 289 << 20)
        let g = TrackingGeometry(granule: 64 << 10, historyLimit: 16, virtualSize: gib)
        #expect(g.coarseUnit(virtualSize: gib) == 64 << 10)
        #expect(g.coarseUnit(virtualSize: 64 << 40) == 2 << 30)
    }
}
