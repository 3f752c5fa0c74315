import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXFormat
import VHDXSets
import VHDXTestSupport
@testable import VHDXServe

@Suite struct CheckpointDiskTests {
    @Test func servesTheFrozenChainWhileTheGuestWritesThenKeepsAReferencePoint() throws {
        let lab = try DiskLab()
        let set = lab.path("s.vhds")
        var o = CreateOptions(virtualSize: 8 << 20)
        o.blockSize = 1 << 20
        try VHDSet.create(path: set, options: o)
        try lab.engineWrite(set, pattern(1 << 20, seed: 1), at: 0)
        let atCheckpoint = try lab.content(set)
        let disk = try lab.open(set, checkpoint: true)
        #expect(disk.info.readOnly)
        let taken = try VHDSet.open(path: set).record.snapshots
        #expect(taken.count == 1)
        let cpID = try #require(taken.first?.changeID)
        #expect(disk.metaContexts(matching: "qemu:dirty-bitmap:").contains("qemu:dirty-bitmap:\(cpID)"))
        // The guest keeps writing to the set's new leaf meanwhile.
        try lab.engineWrite(set, pattern(4096, seed: 2), at: 4096)
        try lab.engineWrite(set, pattern(4096, seed: 3), at: 5 << 20)
        #expect(try read(disk, 0, 8 << 20) == atCheckpoint)
        try disk.close()
        // The checkpoint is gone, its reference point kept: its ID answers what changed since.
        let after = try VHDSet.open(path: set)
        #expect(after.record.snapshots.count == 1)
        let ref = try #require(after.record.snapshots.first)
        #expect(ref.isReferenceOnly && ref.changeID == cpID)
        let changed = try after.changes(since: cpID).ranges
        for off: UInt64 in [4096, 5 << 20] {
            #expect(changed.contains { $0.offset <= off && off + 4096 <= $0.end })
        }
        #expect(try lab.content(set)[4096..<8192] == pattern(4096, seed: 2)[...])
        // Served again, the set offers the reference point's ID: the changes since the checkpoint.
        let served = try lab.open(set, readOnly: true)
        #expect(served.metaContexts(matching: "qemu:dirty-bitmap:").contains("qemu:dirty-bitmap:\(cpID)"))
        let dirty = try served.blockStatus(context: "qemu:dirty-bitmap:\(cpID)", at: 4096, length: 4096, maxExtents: 1)
        #expect(dirty == [BlockStatusExtent(length: 4096, flags: 1)])
        try served.close()
    }

    @Test func aCheckpointThatCannotBeDeletedIsKeptAndSaidSo() throws {
        let lab = try DiskLab()
        let set = lab.path("s.vhds")
        try VHDSet.create(path: set, options: CreateOptions(virtualSize: 8 << 20))
        let disk = try lab.open(set, checkpoint: true)
        do {
            let guest = try VHDSet.open(path: set, writable: true)  // the guest holds the set at close
            var failure: ServeError?
            do throws(ServeError) { try disk.close() } catch { failure = error }
            #expect(failure?.code == .io && failure?.message.contains("--keep-reference") == true)
            withExtendedLifetime(guest) {}
        }
        #expect(try VHDSet.open(path: set).record.snapshots.first?.isReferenceOnly == false)
    }

    @Test func checkpointNeedsASetAndNoOverlay() throws {
        let lab = try DiskLab()
        let p = try lab.create("d.vhdx")
        let before = try DiskLab.sha(p)
        #expect(throws: VHDXError.self) { _ = try lab.open(p, checkpoint: true) }
        let set = lab.path("s.vhds")
        try VHDSet.create(path: set, options: CreateOptions(virtualSize: 8 << 20))
        #expect(throws: VHDXError.self) { _ = try lab.open(set, overlay: lab.path("x.avhdx"), checkpoint: true) }
        #expect(try VHDSet.open(path: set).record.snapshots.isEmpty)
        #expect(try DiskLab.sha(p) == before)
    }
}
