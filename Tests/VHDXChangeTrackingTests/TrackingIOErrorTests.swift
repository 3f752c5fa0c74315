import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXFormat
import VHDXTestSupport

/// A read that fails (EIO) is not damage: the tracker's open, a query and `check` report an I/O
/// error, nothing is reset or written, and the next run without the fault answers as before.
/// A transient fault must never cost the user a full backup.
@Suite struct TrackingIOErrorTests {
    /// A tracked disk with history: two sealed epochs and an open one persisted at close, so
    /// every kind of page (header, coarse map, record sets, the open epoch's set) is on disk.
    static func disk() throws -> (MemoryStorage, ChangeID, ChangeAnswer, RegionTableEntry) {
        let storage = try TrackedDisk.make(size: 16 << 20, history: 4)
        let (image, tracker) = try TrackedDisk.open(storage)
        try image.write([UInt8](repeating: 1, count: 65536), at: 0)
        let first = try tracker.seal()
        try image.write([UInt8](repeating: 2, count: 65536), at: 1 << 20)
        _ = try tracker.seal()
        try image.write([UInt8](repeating: 3, count: 65536), at: 2 << 20)
        let answer = try tracker.changes(since: first)
        let region = try #require(image.region(ChangeTracker.regionGUID))
        try image.close()
        return (storage, first, answer, region)
    }

    @Test("EIO on any page of the tracking region at open, on a query or in check: an I/O error, never a reset, nothing written",
          arguments: [(0, 4096), (4096, 8192), (8192, 1 << 20)])
    func readFaults(_ window: (Int, Int)) throws {
        let (storage, first, answer, region) = try Self.disk()
        let before = storage.bytes
        let failing = region.fileOffset + UInt64(window.0)..<region.fileOffset + UInt64(window.1)
        for writable in [false, true] {
            let faulty = ReadFaultStorage(MemoryStorage(storage.bytes, writable: writable), failing: failing)
            faulty.armed = false
            let image = try VHDXFile(storage: faulty)
            faulty.armed = true
            do {
                let tracker = try ChangeTracking.tracker(of: image)
                // Open read only the header (and coarse map): the sets are read by the query.
                do {
                    _ = try tracker.changes(since: first)
                    Issue.record("a query that could not read its sets answered")
                } catch where error.engineError != nil {
                    #expect(error.engineError?.code == .io, "\(error)")
                } catch {
                    Issue.record("a read fault became \(error), not an I/O error")
                }
                #expect(throws: VHDXError.self) { try tracker.checkFindings() }
                #expect(tracker.status.lastReset == nil, "a read fault reset tracking: \(String(describing: tracker.status.lastReset))")
            } catch {
                #expect(error.engineError?.code == .io, "\(error)")
            }
            #expect(faulty.faults > 0, "the fault was never hit: the test proves nothing")
            if writable { try? image.close() }
            #expect(faulty.writes == 0, "a read fault made something write")
        }
        #expect(storage.bytes == before)
        // Without the fault: the same answer, no reset.
        let (image, tracker) = try TrackedDisk.open(MemoryStorage(storage.bytes, writable: false))
        #expect(try tracker.changes(since: first) == answer)
        #expect(tracker.status.lastReset == nil)
        _ = image
    }
}

/// The same rule on a real file, with the fault injected through the engine's file-system seam
/// (`IOFaultPlan`) at every read and write a command makes, the tracking region's among them:
/// EIO, ENOSPC and EACCES in turn. A read-only query fails with an I/O error and changes no
/// byte; a tracked write session fails with an I/O error and never resets tracking or leaves
/// the region damaged: the next run answers every change made (larger, never smaller), with
/// nothing reset. Each sweep checks that it visited points and that every fault fired.
@Suite struct TrackingIOFaultSweepTests {
    /// A tracked disk file with history (two sealed epochs, an open one persisted at close).
    final class Disk {
        let dir: String
        let path: String
        let first: ChangeID
        init(name: String = #function) throws {
            dir = Fixtures.tempPath("trackio-" + name.filter { $0.isLetter })
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            path = dir + "/disk.vhdx"
            var o = CreateOptions(virtualSize: 8 << 20)
            o.blockSize = 1 << 20
            try VHDXCreator.create(path: path, options: o)
            let image = try VHDXFile.open(path: path, writable: true)
            let tracker = try ChangeTracking.enable(image, granule: TrackedDisk.granule, history: 4)
            try image.write([UInt8](repeating: 1, count: 65536), at: 0)
            first = try tracker.seal()
            try image.write([UInt8](repeating: 2, count: 65536), at: 1 << 20)
            _ = try tracker.seal()
            try image.write([UInt8](repeating: 3, count: 65536), at: 2 << 20)
            try image.close()
        }
        deinit { try? FileManager.default.removeItem(atPath: dir) }

        /// What `track changes --since first` answers (a read-only open, or a writable one closed).
        func answer(writable: Bool = false) throws -> ChangeAnswer {
            let image = try VHDXFile.open(path: path, writable: writable)
            let tracker = try ChangeTracking.tracker(of: image)
            let a = try tracker.changes(since: first)
            #expect(tracker.status.lastReset == nil, "tracking reset: \(String(describing: tracker.status.lastReset))")
            if writable { try image.close() }
            return a
        }

        func bytes() -> Data { FileManager.default.contents(atPath: path) ?? Data() }

        /// Where the tracking region lies in the file.
        func region() throws -> Range<UInt64> {
            let r = try #require(try VHDXFile.open(path: path).region(ChangeTracker.regionGUID))
            return r.fileOffset..<r.fileOffset + UInt64(r.length)
        }
    }

    @Test("an injected EIO/ENOSPC/EACCES at every read of a query (open, tracking region, sets): an I/O error, no byte changed, the next run answers as before",
          arguments: [false, true])
    func queryReads(trackingRegionOnly: Bool) throws {
        let disk = try Disk()
        let region: Range<UInt64>? = try trackingRegionOnly ? disk.region() : nil
        for writable in [false, true] {
            let baseline = try disk.answer(writable: writable)
            let before = disk.bytes()
            let counter = IOFaultPlan(calls: [.read], bytes: region)
            _ = try counter.run(in: disk.dir) { try disk.answer(writable: writable) }
            let sweep = IOFaultSweep("query reads (writable: \(writable), tracking region only: \(trackingRegionOnly))")
            for p in IOFaultSweep.points(counter.kinds, limit: 20) {
                let plan = IOFaultPlan(failAt: p.index, code: p.code, calls: [.read], bytes: region)
                do {
                    // A read the engine retried elsewhere (another candidate path of a parent)
                    // may let the query succeed: then with the same answer.
                    let a = try plan.run(in: disk.dir) { try disk.answer(writable: writable) }
                    #expect(a == baseline, "answered differently although \(plan.fired ?? "no call") failed with \(IOFaultPlan.name(p.code))")
                } catch {
                    sweep.failedWithIOError()
                    #expect(IOFaultSweep.isIOError(error, code: p.code), "\(plan.fired ?? "?") with \(IOFaultPlan.name(p.code)) became \(error), not an I/O error")
                }
                sweep.visited(plan)
                if !writable { #expect(disk.bytes() == before, "a failed read-only query changed the file") }
                #expect(try disk.answer() == baseline, "after \(plan.fired ?? "?"): the next run answers differently")
            }
            print(sweep.summary(calls: counter.count))
            #expect(sweep.problems.isEmpty, "\(sweep.problems)")
        }
    }

    @Test("an injected EIO/ENOSPC/EACCES at every read, write, flush and resize of a tracked session (writes, a seal, close): an I/O error, never a reset, never damage; the next run answers every change",
          arguments: [false, true])
    func sessionCalls(trackingRegionOnly: Bool) throws {
        let pristine = try Disk()
        let before = try TrackedDisk.content(VHDXFile.open(path: pristine.path))
        let baseline = TrackedDisk.granules(try pristine.answer())
        let region: Range<UInt64>? = try trackingRegionOnly ? pristine.region() : nil
        /// The session: two writes around a seal, then close.
        func session(_ path: String) throws {
            let image = try VHDXFile.open(path: path, writable: true)
            let tracker = try ChangeTracking.tracker(of: image)
            try image.write([UInt8](repeating: 4, count: 65536), at: 3 << 20)
            _ = try tracker.seal()
            try image.write([UInt8](repeating: 5, count: 4096), at: (5 << 20) + 8192)
            try image.close()
        }
        let counter = IOFaultPlan(bytes: region)
        do {
            let copy = try TrackedCopy(pristine)
            try counter.run(in: copy.dir) { try session(copy.path) }
        }
        let sweep = IOFaultSweep("tracked session (tracking region only: \(trackingRegionOnly))")
        for p in IOFaultSweep.points(counter.kinds, limit: 20) {
            let copy = try TrackedCopy(pristine)
            let plan = IOFaultPlan(failAt: p.index, code: p.code, bytes: region)
            do {
                try plan.run(in: copy.dir) { try session(copy.path) }
                Issue.record("the session succeeded although \(plan.fired ?? "no call") failed with \(IOFaultPlan.name(p.code))")
            } catch {
                sweep.failedWithIOError()
                #expect(IOFaultSweep.isIOError(error, code: p.code), "\(plan.fired ?? "?") with \(IOFaultPlan.name(p.code)) became \(error), not an I/O error")
            }
            sweep.visited(plan)
            // The next run, without the fault: no reset, no damage, every change answered.
            let where_ = "after \(plan.fired ?? "?") failed with \(IOFaultPlan.name(p.code))"
            let report = try Checker.check(path: copy.path)
            #expect(report.corruptions == 0, "\(where_): check finds \(report.findings.filter { $0.kind == .corruption })")
            let image = try VHDXFile.open(path: copy.path)
            let tracker = try ChangeTracking.tracker(of: image)
            #expect(tracker.status.lastReset == nil, "\(where_): tracking reset: \(String(describing: tracker.status.lastReset))")
            do {
                let answer = TrackedDisk.granules(try tracker.changes(since: pristine.first))
                let truth = TrackedDisk.differingGranules(before, try TrackedDisk.content(image)).union(baseline)
                #expect(truth.isSubset(of: answer), "\(where_): the answer misses granules \(truth.subtracting(answer).sorted())")
            } catch {
                Issue.record("\(where_): the next query fails: \(error)")
            }
        }
        print(sweep.summary(calls: counter.count))
            #expect(sweep.problems.isEmpty, "\(sweep.problems)")
    }

    /// A copy of the disk file in a folder of its own.
    final class TrackedCopy {
        let dir: String
        let path: String
        deinit { try? FileManager.default.removeItem(atPath: dir) }
        init(_ disk: Disk) throws {
            dir = Fixtures.tempPath("trackio-copy")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            path = dir + "/disk.vhdx"
            try FileManager.default.copyItem(atPath: disk.path, toPath: path)
        }
    }
}
