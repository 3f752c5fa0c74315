import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXTestSupport
@testable import VHDXServe

@Suite struct DirtyBitmapDiskTests {
    static func ctx(_ id: ChangeID) -> String { "qemu:dirty-bitmap:\(id)" }

    func dirtyRanges(_ disk: any ServedDisk, _ id: ChangeID) throws -> [Range<UInt64>] {
        var out: [Range<UInt64>] = []
        var v: UInt64 = 0
        while v < disk.info.size {
            let m = try disk.blockStatus(context: DirtyBitmapDiskTests.ctx(id), at: v, length: min(disk.info.size - v, 4 << 20), maxExtents: 64)
            for e in m {
                if e.flags & 1 != 0 {
                    if let last = out.last, last.upperBound == v { out[out.count - 1] = last.lowerBound..<v + UInt64(e.length) } else {
                        out.append(v..<v + UInt64(e.length))
                    }
                }
                v += UInt64(e.length)
            }
        }
        return out
    }

    @Test func dirtyMapCoversEveryWriteAndCleanRangesAreUnchanged() throws {
        let lab = try DiskLab()
        let p = try lab.create("d.vhdx", tracked: true)
        try lab.engineWrite(p, pattern(1 << 20, seed: 1), at: 0)
        let id = try lab.seal(p)
        let atSeal = try lab.content(p)
        let disk = try lab.open(p)
        #expect(disk.metaContexts(matching: "qemu:dirty-bitmap:") == [DirtyBitmapDiskTests.ctx(id)])
        #expect(disk.metaContexts(matching: "").contains(DirtyBitmapDiskTests.ctx(id)))
        #expect(disk.metaContexts(matching: DirtyBitmapDiskTests.ctx(id)) == [DirtyBitmapDiskTests.ctx(id)])
        #expect(try dirtyRanges(disk, id).isEmpty)  // nothing since the seal (and now cached)
        let writes: [(UInt64, Int)] = [(4096, 512), (3 << 20, 100_000), ((16 << 20) - 4096, 4096)]
        for (i, (off, n)) in writes.enumerated() { try write(disk, pattern(n, seed: UInt64(10 + i)), off) }
        try disk.trim(at: 8 << 20, length: 1 << 20, fua: false)
        let dirty = try dirtyRanges(disk, id)
        for (off, n) in writes + [(8 << 20, 1 << 20)] {
            #expect(dirty.contains { $0.lowerBound <= off && off + UInt64(n) <= $0.upperBound }, "write at \(off) not covered")
        }
        let now = try read(disk, 0, 16 << 20)
        var prev = 0
        for gap in dirty.map({ Int($0.lowerBound)..<Int($0.upperBound) }) + [(16 << 20)..<(16 << 20)] {
            #expect(sameBytes(Array(now[prev..<gap.lowerBound]), Array(atSeal[prev..<gap.lowerBound])), "clean range \(prev)..<\(gap.lowerBound) changed")
            prev = gap.upperBound
        }
        try disk.close()
        // Tracking persisted at close: the same answer from the file.
        let answer = try ChangeTracking.changes(in: try VHDXFile.open(path: p), since: id)
        #expect(answer.ranges.map { $0.offset..<$0.end } == dirty)
    }

    @Test func idsThatCannotBeAnsweredAreNotOfferedAndTheLogSaysWhy() throws {
        let lab = try DiskLab()
        let p = try lab.create("d.vhdx", tracked: true)
        let id = try lab.seal(p)
        let other = try lab.create("o.vhdx", tracked: true)
        let otherID = try lab.seal(other)
        // A foreign writer (no tracking attached) changes the disk.
        try lab.engineWrite(p, pattern(512, seed: 2), at: 0, tracked: false)
        let disk = try lab.open(p)
        #expect(disk.metaContexts(matching: "qemu:dirty-bitmap:").isEmpty)
        #expect(disk.metaContexts(matching: DirtyBitmapDiskTests.ctx(id)).isEmpty)
        #expect(lab.log.all.contains { $0.contains("\(id)") && $0.contains("tracking reset") })
        #expect(disk.metaContexts(matching: DirtyBitmapDiskTests.ctx(otherID)).isEmpty)
        #expect(lab.log.all.contains { $0.contains("another disk") })
        #expect(disk.metaContexts(matching: "qemu:dirty-bitmap:nonsense").isEmpty)
        #expect(lab.log.all.contains { $0.contains("nonsense") && $0.contains("not a change ID") })
        try disk.close()
    }

    @Test func untrackedDiskOffersNoBitmap() throws {
        let lab = try DiskLab()
        let p = try lab.create("d.vhdx")
        let disk = try lab.open(p)
        #expect(disk.metaContexts(matching: "qemu:").isEmpty)
        #expect(disk.metaContexts(matching: "") == ["base:allocation"])
        try disk.close()
    }

    /// 16,384 scattered ranges: the map alternates dirty/clean exactly, and pages by maxExtents.
    @Test func manyScatteredRanges() throws {
        let size: UInt64 = 64 << 30
        let ranges = (0..<16_384).map { i in ChangedRange(offset: UInt64(i) * (4 << 20) + 65_536, length: 65_536) }
        let map = DirtyMap(ranges: ranges, size: size)
        let start = ContinuousClock.now
        var all: [BlockStatusExtent] = []
        var v: UInt64 = 0
        while v < size {
            let m = map.extents(at: v, length: min(size - v, UInt64(UInt32.max) / 512 * 512), alignment: 512, maxExtents: 1 << 20)
            all += m
            v += m.reduce(0) { $0 + UInt64($1.length) }
        }
        print("16,384-range dirty map, whole disk: \(ContinuousClock.now - start)")
        #expect(all.reduce(0) { $0 + UInt64($1.length) } == size)
        // Pages (and u32 pieces) may split a run; joined, the runs alternate exactly.
        var runs: [(offset: UInt64, length: UInt64, flags: UInt32)] = []
        var at: UInt64 = 0
        for e in all {
            if let last = runs.last, last.flags == e.flags { runs[runs.count - 1].length += UInt64(e.length) } else {
                runs.append((at, UInt64(e.length), e.flags))
            }
            at += UInt64(e.length)
        }
        let dirty = runs.filter { $0.flags == 1 }
        #expect(dirty.map(\.offset) == ranges.map(\.offset) && dirty.allSatisfy { $0.length == 65_536 })
        let two = map.extents(at: (4 << 20) + 65_536 + 512, length: 1 << 30, alignment: 512, maxExtents: 2)
        #expect(two == [BlockStatusExtent(length: 65_536 - 512, flags: 1), BlockStatusExtent(length: (4 << 20) - 65_536, flags: 0)])
    }
}
