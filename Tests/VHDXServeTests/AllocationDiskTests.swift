import Foundation
import Testing
import VHDX
import VHDXTestSupport
@testable import VHDXServe

@Suite struct AllocationDiskTests {
    static let ctx = "base:allocation"

    func map(_ disk: any ServedDisk, _ offset: UInt64 = 0, _ length: UInt64? = nil, max: Int = .max) throws -> [BlockStatusExtent] {
        try disk.blockStatus(context: AllocationDiskTests.ctx, at: offset, length: length ?? disk.info.size - offset, maxExtents: max)
    }

    @Test func dataAndHolesAreTold() throws {
        let lab = try DiskLab()
        let p = try lab.create("d.vhdx")
        let disk = try lab.open(p)
        #expect(disk.metaContexts(matching: "base:") == ["base:allocation"])
        #expect(disk.metaContexts(matching: "base:allocation") == ["base:allocation"])
        #expect(disk.metaContexts(matching: "base:other").isEmpty)
        #expect(try map(disk) == [BlockStatusExtent(length: 16 << 20, flags: 3)])
        try write(disk, pattern(4096, seed: 1), 2 << 20)
        try write(disk, pattern(2 << 20, seed: 2), 5 << 20)
        // Blocks of 1 MiB: a block written anywhere is data as a whole.
        #expect(try map(disk) == [BlockStatusExtent(length: 2 << 20, flags: 3), BlockStatusExtent(length: 1 << 20, flags: 0),
                                  BlockStatusExtent(length: 2 << 20, flags: 3), BlockStatusExtent(length: 2 << 20, flags: 0),
                                  BlockStatusExtent(length: 9 << 20, flags: 3)])
        // From an offset inside a run, at most `length` bytes, at most maxExtents descriptors.
        #expect(try map(disk, (1 << 20) + 512, 1 << 20) == [BlockStatusExtent(length: (1 << 20) - 512, flags: 3), BlockStatusExtent(length: 512, flags: 0)])
        #expect(try map(disk, 0, max: 1) == [BlockStatusExtent(length: 2 << 20, flags: 3)])
        // A ZERO block (writeZeroes of a whole block) holds no storage: HOLE|ZERO.
        try disk.writeZeroes(at: 5 << 20, length: 1 << 20, mayDeallocate: true, fastOnly: false, fua: false)
        #expect(try map(disk, 5 << 20, 2 << 20) == [BlockStatusExtent(length: 1 << 20, flags: 3), BlockStatusExtent(length: 1 << 20, flags: 0)])
        try disk.close()
    }

    @Test func resolvedThroughTheChain() throws {
        let lab = try DiskLab()
        let full = try lab.create("full.vhdx")
        try lab.engineWrite(full, pattern(4096, seed: 3), at: 0)
        let inc = try lab.child("inc.avhdx", of: full)
        try lab.engineWrite(inc, pattern(4096, seed: 4), at: 8 << 20)
        let disk = try lab.open(inc, readOnly: true)
        let m = try map(disk)
        #expect(m.first == BlockStatusExtent(length: 1 << 20, flags: 0))  // the parent's data block
        #expect(m.reduce(0) { $0 + UInt64($1.length) } == 16 << 20)
        // The child's own sectors are data; the rest of its 2 MiB block reads the parent's hole.
        let at8 = try map(disk, 8 << 20, 1 << 20)
        #expect(at8.first == BlockStatusExtent(length: 4096, flags: 0))
        try disk.close()
    }

    /// The cached map, patched after every change, equals a map built afresh.
    @Test func cachedMapStaysExactUnderChanges() throws {
        let lab = try DiskLab()
        let base = try lab.create("base.vhdx", size: 16 << 20)
        try lab.engineWrite(base, pattern(6 << 20, seed: 5), at: 3 << 20)
        let top = try lab.child("top.avhdx", of: base)
        let disk = try lab.open(top)
        _ = try map(disk)  // built now, patched from here on
        var g = SplitMix(seed: 9)
        for step in 0..<24 {
            let sector = UInt64.random(in: 0..<(32 << 10), using: &g)
            let count = UInt64.random(in: 1...(step % 4 == 3 ? 8192 : 64), using: &g)
            let off = sector * 512, len = min(count * 512, (16 << 20) - off)
            switch step % 3 {
            case 0: try write(disk, [UInt8](repeating: 7, count: Int(len)), off)
            case 1: try disk.trim(at: off, length: len, fua: false)
            default: try disk.writeZeroes(at: off, length: len, mayDeallocate: true, fastOnly: false, fua: false)
            }
        }
        let served = try map(disk)
        try disk.close()
        let again = try lab.open(top, readOnly: true)
        #expect(served == (try map(again)))
        try again.close()
    }

    /// The one-pass BAT scan (files without parent) says what resolving every block says.
    @Test func batScanAgreesWithTheResolvedChain() throws {
        let lab = try DiskLab()
        let p = try lab.create("d.vhdx", size: (16 << 20) - 512)  // a partial last block too
        let image = try VHDXFile.openChain(path: p, writable: true)
        try image.write(pattern(3 << 20, seed: 1), at: 1 << 20)
        try image.writeZeroes(at: 2 << 20, length: 1 << 20)
        try image.trim(at: 3 << 20, length: 1 << 20)
        try image.write(pattern(512, seed: 2), at: (16 << 20) - 1024)
        let scanned = try #require(try AllocationMap.scanBAT(image))
        let resolved = try AllocationMap.resolve(image, 0, image.virtualSize)
        #expect(scanned.map(\.0) == resolved.map(\.0) && scanned.map(\.1) == resolved.map(\.1))
        #expect(scanned.count == 4)
        try image.close()
    }

    /// Extent lengths are u32: a 64 TiB hole is told in pieces of at most 4 GiB − 512.
    @Test func hugeSparseDiskInPieces() throws {
        let lab = try DiskLab()
        let p = try lab.create("huge.vhdx", size: 64 << 40, blockSize: 32 << 20)
        let disk = try lab.open(p, readOnly: true)
        let start = ContinuousClock.now
        let m = try map(disk)
        let first = ContinuousClock.now - start
        let again = ContinuousClock.now
        _ = try map(disk)
        print("64 TiB base:allocation: first map (builds the cache) \(first), then \(ContinuousClock.now - again)")
        #expect(m.allSatisfy { $0.flags == 3 && $0.length % 512 == 0 && UInt64($0.length) <= UInt64(UInt32.max) })
        #expect(m.reduce(0) { $0 + UInt64($1.length) } == 64 << 40)
        #expect(m.count == 16385)
        try disk.close()
    }
}
