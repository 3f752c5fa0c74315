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
                } catch let e as VHDXError {
                    #expect(e.code == .io, "\(e)")
                } catch {
                    Issue.record("a read fault became \(error), not an I/O error")
                }
                #expect(throws: VHDXError.self) { try tracker.checkFindings() }
                #expect(tracker.status.lastReset == nil, "a read fault reset tracking: \(String(describing: tracker.status.lastReset))")
            } catch let e as VHDXError {
                #expect(e.code == .io, "\(e)")
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
