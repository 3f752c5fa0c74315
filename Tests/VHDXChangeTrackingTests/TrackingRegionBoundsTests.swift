import Testing
import VHDX
import VHDXFormat
@testable import VHDXChangeTracking

/// Bounds a tracking region read from a file must keep before the tracker trusts it (found by
/// reading the code behind Scripts/fuzz.sh --harness tracking).
@Suite("Tracking region bounds")
struct TrackingRegionBoundsTests {
    /// A 16 MiB disk with 512-byte granules whose open epoch's persisted set claims granules far
    /// past the disk's end: [0, 2^30), 512 GiB. Loading it inserted every 4,096-granule leaf into
    /// the in-memory set (2^18 here; 2^25, 33 million dictionary entries, with 512-byte granules to 64 TiB), since
    /// the set was bounded by 64 TiB and not by the tracked size. It must read as damaged.
    @Test func openEpochSetPastTheDiskIsDamaged() throws {
        let m = try TrackedDisk.make(granule: 512)
        let image = try VHDXFile(storage: MemoryStorage(m.bytes, writable: false))
        let region = try #require(image.region(ChangeTracker.regionGUID))
        var header = try TrackingHeader(page: try image.readMetadataPage(at: region.fileOffset), base: region.fileOffset,
                                        logicalSectorSize: 512, blockSize: image.blockSize)
        let runs = [GranuleRun(start: 0, count: 1 << 30)]
        let slot: UInt32 = 0
        #expect(header.records.allSatisfy { $0.slot != slot })
        header.currentSlot = slot
        header.currentRunCount = UInt32(runs.count)
        header.currentFlags = 0
        header.currentChecksum = RunList.checksum(runs)
        try m.write(RunList.encode(runs), at: region.fileOffset + header.geometry.slotOffset(slot))
        try m.write(header.encode(), at: region.fileOffset)

        let tampered = try VHDXFile(storage: MemoryStorage(m.bytes, writable: false))
        let tracker = try #require(try ChangeTracker.view(of: tampered, observe: false))
        #expect(tracker.status.notes.contains { $0.contains("the open epoch's change set is damaged") }, "notes: \(tracker.status.notes)")
        let leaves = tracker.current.leaves.count
        #expect(leaves == 0)
    }
}
