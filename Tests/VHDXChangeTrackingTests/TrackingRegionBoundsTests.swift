import Testing
import VHDX
import VHDXFormat
@testable import VHDXChangeTracking

/// Bounds a tracking region read from a file must keep before the tracker trusts it (found by
/// reading the code behind Scripts/fuzz.sh --harness tracking).
@Suite("Tracking region bounds")
struct TrackingRegionBoundsTests {
    /// A 16 MiB disk with 512-byte granules whose open epoch's persisted set claims granules far
    /// past the disk's end: [0, 2^30), 512 GiB. Loading it once inserted every 4,096-granule leaf
    /// into the in-memory set (2^18 here; 2^25, 33 million dictionary entries, with 512-byte
    /// granules to 64 TiB), since the set was bounded by 64 TiB and not by the tracked size. It was
    /// then refused as damaged; but a shrink followed by a crash before the set is rewritten leaves
    /// exactly such runs (found by the crash model's long mode), so they are clipped to the tracked
    /// size instead: the memory stays bounded by the disk, and the answer covers the whole disk
    /// (larger, never smaller).
    @Test func openEpochSetPastTheDiskIsClippedToIt() throws {
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
        #expect(!tracker.status.notes.contains { $0.contains("damaged") }, "notes: \(tracker.status.notes)")
        // 16 MiB of 512-byte granules: 32,768 granules, 8 leaves of 4,096; every granule changed.
        let leaves = tracker.current.leaves.count
        #expect(leaves == 8)
        #expect(tracker.current.runs() == [GranuleRun(start: 0, count: 32_768)])
    }
}
