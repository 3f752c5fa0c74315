import Foundation
import Testing
import VHDX
import VHDXFormat
import VHDXTestSupport
@testable import VHDXChangeTracking

/// What `changes(since:)` answers on one disk, and every way it refuses.
@Suite("Tracking semantics")
struct TrackingSemanticsTests {
    typealias T = TrackedDisk

    @Test("after clean closes the answer is exactly the granules written, zeroed, trimmed or grown")
    func exactWhenClean() throws {
        let m = try T.make()
        var (image, tracker) = try T.open(m)
        try image.write([UInt8](repeating: 1, count: 100), at: 5000)
        let id1 = try tracker.seal()
        try image.write([UInt8](repeating: 2, count: 4096), at: 3 << 20)          // granule 48
        try image.writeZeroes(at: 8 << 20, length: 200 << 10)                        // granules 128...131
        try image.trim(at: 12 << 20, length: 64 << 10)                               // granule 192
        try image.write([UInt8](repeating: 0, count: 512), at: 14 << 20)             // zeros into nothing: still a write
        try image.close()
        (image, tracker) = try T.open(m)
        let a = try tracker.changes(since: id1)
        #expect(a.ranges == [ChangedRange(offset: 3 << 20, length: 64 << 10),
                             ChangedRange(offset: 8 << 20, length: 256 << 10),
                             ChangedRange(offset: 12 << 20, length: 64 << 10),
                             ChangedRange(offset: 14 << 20, length: 64 << 10)])
        #expect(a.processed == 16 << 20)
        #expect(a.changedBytes == 448 << 10)
        // Growing marks the new range; shrinking clips answers without invalidating the ID.
        let id2 = try tracker.seal()
        try image.resize(to: 20 << 20)
        #expect(try tracker.changes(since: id2).ranges == [ChangedRange(offset: 16 << 20, length: 4 << 20)])
        try image.resize(to: 10 << 20)
        #expect(try tracker.changes(since: id1).ranges == [ChangedRange(offset: 3 << 20, length: 64 << 10),
                                                          ChangedRange(offset: 8 << 20, length: 256 << 10)])
        try image.close()
    }

    @Test("--until, offset/length windows and paging with maxRanges")
    func windowsAndPaging() throws {
        let m = try T.make()
        let (image, tracker) = try T.open(m)
        let id1 = try tracker.seal()
        for k in 0..<10 { try image.write([UInt8](repeating: 9, count: 512), at: UInt64(k) << 20) }
        let id2 = try tracker.seal()
        try image.write([UInt8](repeating: 9, count: 512), at: 15 << 20)
        #expect(try tracker.changes(since: id1, until: id2).ranges.count == 10)
        #expect(try tracker.changes(since: id1).ranges.count == 11)
        #expect(try tracker.changes(since: id2).ranges == [ChangedRange(offset: 15 << 20, length: 64 << 10)])
        let window = try tracker.changes(since: id1, offset: (2 << 20) + 100, length: 2 << 20)
        #expect(window.ranges == [ChangedRange(offset: (2 << 20) + 100, length: (64 << 10) - 100), ChangedRange(offset: 3 << 20, length: 64 << 10),
                                  ChangedRange(offset: 4 << 20, length: 100)])
        // Paging: 3 at a time until everything is seen.
        var offset: UInt64 = 0
        var seen: [ChangedRange] = []
        while offset < image.virtualSize {
            let page = try tracker.changes(since: id1, offset: offset, maxRanges: 3)
            #expect(page.ranges.count <= 3)
            seen += page.ranges
            offset += page.processed
        }
        #expect(seen == (try tracker.changes(since: id1)).ranges)
        #expect(throws: ChangeTrackingError(.unknownID, "")) { try tracker.changes(since: id2, until: id1) }
        try image.close()
    }

    @Test("distinct errors: not enabled, unknown, expired, another disk, reset by an outside writer")
    func distinctErrors() throws {
        // Not enabled.
        let plain = MemoryStorage()
        try VHDXCreator.create(on: plain, options: CreateOptions(virtualSize: 8 << 20))
        #expect(throws: ChangeTrackingError(.notEnabled, "")) { try ChangeTracking.tracker(of: try VHDXFile(storage: plain)) }

        let m = try T.make(history: 2)
        var (image, tracker) = try T.open(m)
        var ids: [ChangeID] = []
        for k in 0..<5 {
            try image.write([UInt8(k + 1)], at: UInt64(k) << 20)
            ids.append(try tracker.seal())
        }
        // History 2 keeps records 4 and 5: IDs 3, 4, 5 answer; 1 and 2 expired.
        #expect(tracker.retainedIDs == Array(ids[2...]))
        #expect(throws: ChangeTrackingError(.expired, "")) { try tracker.changes(since: ids[0]) }
        #expect(throws: ChangeTrackingError(.expired, "")) { try tracker.changes(since: ids[1]) }
        #expect(try tracker.changes(since: ids[2]).ranges.count == 2)
        // Unknown: another tracking id, a future epoch, a newer generation.
        var other = ids[4]; other.trackingID = .random()
        #expect(throws: ChangeTrackingError(.unknownID, "")) { try tracker.changes(since: other) }
        var future = ids[4]; future.epoch += 1
        #expect(throws: ChangeTrackingError(.unknownID, "")) { try tracker.changes(since: future) }
        // Another disk.
        var foreign = ids[4]; foreign.virtualDiskID = .random()
        #expect(throws: ChangeTrackingError(.otherDisk, "")) { try tracker.changes(since: foreign) }
        try image.close()

        // An outside writer: the engine without the tracker renews DataWriteGuid.
        let untracked = try VHDXFile(storage: m)
        try untracked.write([7], at: 0)
        try untracked.close()
        (image, tracker) = try T.open(m)
        #expect(throws: ChangeTrackingError(.reset, "")) { try tracker.changes(since: ids[4]) }
        #expect(tracker.status.lastReset?.reason.contains("outside change tracking") == true)
        // A new seal answers again; the old IDs stay reset (a newer generation).
        let fresh = try tracker.seal()
        try image.write([8], at: 2 << 20)
        #expect(try tracker.changes(since: fresh).ranges == [ChangedRange(offset: 2 << 20, length: 64 << 10)])
        try image.close()
        (image, tracker) = try T.open(m)
        #expect(throws: ChangeTrackingError(.reset, "")) { try tracker.changes(since: ids[4]) }
        #expect(try tracker.changes(since: fresh).ranges.count == 1)
        // Disable and enable: the old IDs become unknown.
        try ChangeTracking.disable(image)
        #expect(throws: ChangeTrackingError(.notEnabled, "")) { try ChangeTracking.tracker(of: image) }
        tracker = try ChangeTracking.enable(image)
        _ = try tracker.seal()
        #expect(throws: ChangeTrackingError(.unknownID, "")) { try tracker.changes(since: fresh) }
        try image.close()
    }

    @Test("a damaged tracking region resets tracking with that reason instead of being trusted")
    func damagedRegion() throws {
        let m = try T.make()
        var (image, tracker) = try T.open(m)
        let id = try tracker.seal()
        try image.write([1], at: 0)
        try image.close()
        let region = try #require(image.region(ChangeTracker.regionGUID))
        m.bytes[Int(region.fileOffset) + 200] ^= 0x40  // inside the header page: its CRC fails
        (image, tracker) = try T.open(m)
        #expect(throws: ChangeTrackingError(.reset, "")) { try tracker.changes(since: id) }
        #expect(tracker.status.lastReset?.reason.contains("damaged") == true)
        // The next writable use records the reset and tracking works again.
        let next = try tracker.seal()
        try image.write([2], at: 1 << 20)
        #expect(try tracker.changes(since: next).ranges == [ChangedRange(offset: 1 << 20, length: 64 << 10)])
        try image.close()
    }

    @Test("20,000 scattered 4 KiB writes on a 4 GiB disk are answered exactly (the set is stored as a bitmap)")
    func scatteredSetStaysExact() throws {
        // A sparse file, not memory: the writes touch every 32 MiB block, and a memory storage
        // then holds (and zero-fills) all 4 GiB.
        let path = Fixtures.tempPath("scattered.vhdx")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var o = CreateOptions(virtualSize: 4 << 30)
        o.blockSize = 32 << 20
        try VHDXCreator.create(path: path, options: o)
        var written = Set<UInt64>()
        let id: ChangeID
        do {  // the writing session, closed (and its lock dropped) before the reopen
            let image = try VHDXFile.open(path: path, writable: true)
            let tracker = try ChangeTracking.enable(image)
            id = try tracker.seal()
            var rng = SystemRandomNumberGenerator()
            let page = [UInt8](repeating: 0x5A, count: 4096)
            for _ in 0..<20_000 {
                let g = UInt64.random(in: 0..<(4 << 30) / T.granule, using: &rng)
                try image.write(page, at: g * T.granule)
                written.insert(g)
            }
            try image.close()
        }
        let (image, tracker) = try T.open(try FileStorage(path: path, mode: .readWrite))
        let a = try tracker.changes(since: id)
        #expect(a.exact)
        #expect(T.granules(a) == written)
        _ = try tracker.seal()
        let again = try tracker.changes(since: id)
        #expect(again.exact && T.granules(again) == written, "the sealed record keeps it exact too")
        try image.close()
    }

    @Test("tracking adds a bounded number of flushes per epoch, however many writes and flushes the session makes")
    func flushCostIsBounded() throws {
        // The same 400 random 4 KiB rewrites of allocated blocks, each followed by a flush, on
        // an untracked and a tracked copy; the storage counts its flushes.
        let m = try T.make()
        do {
            let (image, _) = try T.open(m)
            try image.write([UInt8](repeating: 1, count: 16 << 20), at: 0)
            _ = try ChangeTracking.tracker(of: image).seal()
            try image.close()
        }
        func flushes(tracked: Bool) throws -> Int {
            let storage = CrashStorage(m.bytes)
            let image = try VHDXFile(storage: storage)
            if tracked { try ChangeTracker.attach(to: image) }
            var rng = SplitMix(seed: 7)
            for _ in 0..<400 {
                try image.write([UInt8](repeating: 2, count: 4096), at: rng.next() % 4096 * 4096)
                try image.flush()
            }
            try image.close()
            return storage.flushes
        }
        let plain = try flushes(tracked: false), tracked = try flushes(tracked: true)
        // Session record with the first marks, mark-ahead window commits, one persist at the
        // first flush, the dirty flag again, the persist at close: about 7 commits of 2
        // flushes each. Persisting at every flush would cost ~4 more flushes per flush.
        #expect(tracked - plain <= 20, "tracking added \(tracked - plain) flushes to \(plain)")
    }

    @Test("compact moves blocks and cuts the file without disturbing tracking")
    func compactKeepsTracking() throws {
        let m = try T.make()
        var (image, tracker) = try T.open(m)
        try image.write([UInt8](repeating: 1, count: 1 << 20), at: 2 << 20)
        try image.write([UInt8](repeating: 0, count: 1 << 20), at: 4 << 20)
        let id = try tracker.seal()
        try image.write([UInt8](repeating: 2, count: 4096), at: 9 << 20)
        try image.close()
        (image, tracker) = try T.open(m)
        _ = try image.compact()
        try image.close()
        (image, tracker) = try T.open(m)
        #expect(try tracker.changes(since: id).ranges == [ChangedRange(offset: 9 << 20, length: 64 << 10)])
        #expect(try image.read(at: 2 << 20, count: 1) == [1])
        try image.close()
    }

    @Test("a read-only open answers without writing; the file stays byte-identical")
    func readOnlyNeverWrites() throws {
        let m = try T.make()
        var (image, tracker) = try T.open(m)
        let id = try tracker.seal()
        try image.write([1], at: 0)
        try image.flush()  // no close: the session stays dirty, as after a crash
        let bytes = m.bytes
        let ro = MemoryStorage(bytes, writable: false)
        (image, tracker) = try T.open(ro)
        #expect(try tracker.changes(since: id).ranges.contains { $0.offset == 0 })
        #expect(throws: VHDXError.self) { try tracker.seal() }
        #expect(ro.bytes == bytes)
    }
}
