import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport
@testable import VHDXChangeTracking

/// A merge folds a child into a tracked ancestor: with a crash at every flush point of the fold
/// (torn writes), the ancestor's answer since an ID sealed before the child existed must still
/// cover every granule of the ancestor that differs from its content at that ID. And writes into
/// a tracked differencing child (sector bitmaps) are crash-tested the same way.
@Suite("Tracking under crashes: chains")
struct TrackingMergeCrashTests {
    struct Chain {
        var base: [UInt8]
        var child: [UInt8]
        var id0: ChangeID
        var content0: [UInt8]
    }

    /// base (8 MiB, tracked; 0x11 in [0, 3 MiB), sealed as id0, then 0x22 at 6 MiB) ← child
    /// (tracked too; a partial write, a whole block, zeros over the parent's data).
    static let chain: Chain = {
        let dir = Fixtures.tempPath("trk-merge")
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let basePath = dir + "/base.vhdx", childPath = dir + "/child.avhdx"
        var o = CreateOptions(virtualSize: 8 << 20)
        o.blockSize = 1 << 20
        try! VHDXCreator.create(path: basePath, options: o)
        var id0: ChangeID!
        var content0: [UInt8] = []
        do {
            let base = try! VHDXFile.openFile(path: basePath, writable: true)
            let tracker = try! ChangeTracking.enable(base)
            try! base.write([UInt8](repeating: 0x11, count: 3 << 20), at: 0)
            id0 = try! tracker.seal()
            content0 = try! TrackedDisk.content(base)
            try! base.write([UInt8](repeating: 0x22, count: 4096), at: 6 << 20)
            try! base.close()
        }
        var c = ChildOptions()
        c.blockSize = 1 << 20
        try! VHDXCreator.createChild(path: childPath, parentPath: basePath, options: c)
        do {
            let child = try! VHDXFile.openChain(path: childPath, writable: true)
            try! ChangeTracking.followParent(child, parent: child.parent!)
            try! child.write([UInt8](repeating: 0x33, count: 4096), at: (1 << 20) + 8192)
            try! child.write([UInt8](repeating: 0x44, count: 1 << 20), at: 4 << 20)
            try! child.writeZeroes(at: 2 << 20, length: 64 << 10)
            try! child.close()
        }
        let read = { (p: String) in Array(try! Data(contentsOf: URL(fileURLWithPath: p))) }
        return Chain(base: read(basePath), child: read(childPath), id0: id0, content0: content0)
    }()

    /// Granules of `bytes`' own content that differ from `then` and are missing from the
    /// answer since `id`.
    static func missed(_ bytes: [UInt8], since id: ChangeID, then: [UInt8]) throws -> Set<UInt64> {
        let (image, tracker) = try TrackedDisk.open(MemoryStorage(bytes, writable: false))
        let got = TrackedDisk.granules(try tracker.changes(since: id))
        return TrackedDisk.differingGranules(then, try TrackedDisk.content(image)).subtracting(got)
    }

    @Test("a crash at every flush point of a merge into a tracked ancestor never makes its answers too small")
    func foldIntoTrackedAncestor() throws {
        let c = TrackingMergeCrashTests.chain
        // The linkage step, done cleanly (Merger's own tests crash it).
        let childStorage = MemoryStorage(c.child)
        let oldGUID = try VHDXFile(storage: MemoryStorage(c.base, writable: false)).header.dataWriteGUID
        let g = try Merger.recordLinkage(in: try VHDXFile(storage: childStorage), ancestorDataWriteGUID: oldGUID)
        let linked = childStorage.bytes

        func session(_ storage: CrashStorage) -> Bool {
            do {
                let top = try VHDXFile(storage: MemoryStorage(linked, writable: false))
                let ancestor = try VHDXFile(storage: storage)
                try ChangeTracker.attach(to: ancestor)
                top.parent = ancestor
                _ = try Merger(top: top, ancestorLayer: 1).fold(newGUID: g)
                return true
            } catch { return false }
        }
        let clean = CrashStorage(c.base)
        #expect(session(clean))
        #expect(try TrackingMergeCrashTests.missed(clean.durable, since: c.id0, then: c.content0).isEmpty)
        let merged = try TrackedDisk.content(try VHDXFile(storage: MemoryStorage(clean.durable, writable: false)))
        #expect(merged[4 << 20] == 0x44 && merged[(1 << 20) + 8192] == 0x33 && merged[2 << 20] == 0)
        let sweep = CrashSweep("the merge's flush points")
        for f in 0..<clean.flushes {
            let storage = CrashStorage(c.base)
            storage.crashAtFlush = f
            #expect(!session(storage))
            sweep.visited("flush \(f)", crashed: storage.crashed)
            for seed in TestScale.seeds(2) {
                let image = storage.crashImage(seed: seed &* 7919 &+ UInt64(f))
                let missed = try TrackingMergeCrashTests.missed(image, since: c.id0, then: c.content0)
                #expect(missed.isEmpty, "crash at flush \(f) \(TestScale.replay(seed: seed, filter: "TrackingMergeCrashTests/foldIntoTrackedAncestor")): granules \(missed.sorted()) changed but were not reported")
                sweep.checkedResult()
            }
        }
        #expect(sweep.problems.isEmpty, "\(sweep.problems)")
    }

    @Test("a crash at every flush point of writes into a tracked differencing child never makes its answers too small")
    func writesIntoTrackedChild() throws {
        let c = TrackingMergeCrashTests.chain
        func open(_ storage: Storage) throws -> (VHDXFile, ChangeTracker) {
            let child = try VHDXFile(storage: storage)
            child.parent = try VHDXFile(storage: MemoryStorage(c.base, writable: false))
            return (child, try ChangeTracking.tracker(of: child))
        }
        // Seal on the child, then writes of every kind a child handles differently.
        let sealed = MemoryStorage(c.child)
        let (image, tracker) = try open(sealed)
        let id = try tracker.seal()
        let then = try TrackedDisk.content(image)
        try image.close()
        let ops: [(VHDXFile) throws -> Void] = [
            { try $0.write([UInt8](repeating: 0x55, count: 4096), at: (1 << 20) + 16384) },  // more bits in a partial block
            { try $0.write([UInt8](repeating: 0x66, count: 512), at: 5 << 20) },             // a new partial block
            { try $0.write([UInt8](repeating: 0x77, count: 4096), at: (4 << 20) + 4096) },    // in place, full block
            { try $0.writeZeroes(at: 0, length: 1 << 20) },                                  // zeros over parent data
            { try $0.write([UInt8](repeating: 0x88, count: 1000), at: (7 << 20) + 100) },     // unaligned, through the parent
        ]
        func session(_ storage: CrashStorage) -> Bool {
            do {
                let (child, _) = try open(storage)
                for op in ops { try op(child) }
                try child.close()
                return true
            } catch { return false }
        }
        let clean = CrashStorage(sealed.bytes)
        #expect(session(clean))
        // The points 0..<flushes crash; one more runs to the end without a crash.
        let sweep = CrashSweep("the child's flush points")
        for f in 0...clean.flushes {
            let storage = CrashStorage(sealed.bytes)
            storage.crashAtFlush = f
            let completed = session(storage)
            if f < clean.flushes { sweep.visited("flush \(f)", crashed: storage.crashed && !completed) }
            else { #expect(completed && !storage.crashed, "the run past the last flush point did not complete") }
            for seed in TestScale.seeds(2) {
                let bytes = storage.crashed ? storage.crashImage(seed: seed &* 7919 &+ UInt64(f)) : storage.volatile
                let (after, t) = try open(MemoryStorage(bytes, writable: false))
                let got = TrackedDisk.granules(try t.changes(since: id))
                let missed = TrackedDisk.differingGranules(then, try TrackedDisk.content(after)).subtracting(got)
                #expect(missed.isEmpty, "crash at flush \(f) \(TestScale.replay(seed: seed, filter: "TrackingMergeCrashTests/writesIntoTrackedChild")): granules \(missed.sorted()) changed but were not reported")
                sweep.checkedResult()
            }
        }
        #expect(sweep.problems.isEmpty, "\(sweep.problems)")
    }
}
