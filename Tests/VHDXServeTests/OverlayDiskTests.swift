import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXSets
import VHDXTestSupport
@testable import VHDXServe

@Suite struct OverlayDiskTests {
    @Test func writesGoToTheNewChildAndTheBackupStaysByteIdentical() throws {
        let lab = try DiskLab()
        let full = try lab.create("full.vhdx", tracked: true)
        try lab.engineWrite(full, pattern(2 << 20, seed: 1), at: 0)
        let id = try lab.seal(full)
        let inc1 = try lab.child("inc1.avhdx", of: full)
        try lab.engineWrite(inc1, pattern(4096, seed: 2), at: 6 << 20)
        let inc2 = try lab.child("inc2.avhdx", of: inc1)
        try lab.engineWrite(inc2, pattern(4096, seed: 3), at: 10 << 20)
        let files = [full, inc1, inc2]
        let hashes = try files.map(DiskLab.sha)
        let before = try lab.content(inc2)
        let scratch = lab.path("scratch.avhdx")
        let disk = try lab.open(inc2, overlay: scratch)
        #expect(!disk.info.readOnly)
        #expect(try read(disk, 0, 16 << 20) == before)
        try write(disk, pattern(8192, seed: 4), 512, fua: true)
        try disk.trim(at: 0, length: 2 << 20, fua: false)
        try disk.writeZeroes(at: 6 << 20, length: 4096, mayDeallocate: true, fastOnly: false, fua: false)
        var expected = before
        expected.replaceSubrange(6 << 20..<(6 << 20) + 4096, with: [UInt8](repeating: 0, count: 4096))
        let afterTrim = try read(disk, 0, 16 << 20)
        #expect(afterTrim[(6 << 20)..<(6 << 20) + 4096].allSatisfy { $0 == 0 })
        #expect(afterTrim[(10 << 20)..<(10 << 20) + 4096] == before[(10 << 20)..<(10 << 20) + 4096])
        // The overlay tracks as its parent does: the backup's ID answers the overlay's writes.
        #expect(disk.metaContexts(matching: "qemu:dirty-bitmap:\(id)") == ["qemu:dirty-bitmap:\(id)"])
        let dirty = try disk.blockStatus(context: "qemu:dirty-bitmap:\(id)", at: 0, length: 16 << 20, maxExtents: .max)
        #expect(dirty.first?.flags == 1)
        try disk.close()
        #expect(try files.map(DiskLab.sha) == hashes)
        #expect(try lab.content(scratch) == afterTrim)
        #expect(try Checker.check(path: scratch).exitCode == 0)
    }

    /// Over a set: the child's parent is the active leaf; the set is held shared meanwhile, so
    /// its guest cannot write under the overlay; the set's files stay as they were.
    @Test func overASetsActiveLeaf() throws {
        let lab = try DiskLab()
        let set = lab.path("s.vhds")
        var o = CreateOptions(virtualSize: 8 << 20)
        o.blockSize = 1 << 20
        try VHDSet.create(path: set, options: o)
        try lab.engineWrite(set, pattern(4096, seed: 1), at: 0)
        let leaf = try VHDSet.open(path: set).leafPath
        let hashes = try [set, leaf].map(DiskLab.sha)
        let scratch = lab.path("scratch.avhdx")
        let disk = try lab.open(set, overlay: scratch)
        #expect(throws: VHDXError.self) { _ = try VHDSet.open(path: set, writable: true) }
        try write(disk, pattern(4096, seed: 2), 4096)
        #expect(try read(disk, 0, 8192) == pattern(4096, seed: 1) + pattern(4096, seed: 2))
        try disk.close()
        #expect(try [set, leaf].map(DiskLab.sha) == hashes)
        #expect(try lab.content(scratch)[0..<8192] == (pattern(4096, seed: 1) + pattern(4096, seed: 2))[...])
    }

    @Test func refusesAnExistingChildOrAChainFile() throws {
        let lab = try DiskLab()
        let full = try lab.create("full.vhdx")
        let inc = try lab.child("inc.avhdx", of: full)
        let hashes = try [full, inc].map(DiskLab.sha)
        for target in [full, inc] {
            #expect(throws: VHDXError.self) { _ = try lab.open(inc, overlay: target) }
        }
        let other = try lab.create("other.vhdx")
        #expect(throws: VHDXError.self) { _ = try lab.open(inc, overlay: other) }
        #expect(throws: VHDXError.self) { _ = try lab.open(inc, readOnly: true, overlay: lab.path("new.avhdx")) }
        #expect(!FileManager.default.fileExists(atPath: lab.path("new.avhdx")))
        #expect(try [full, inc].map(DiskLab.sha) == hashes)
    }
}
