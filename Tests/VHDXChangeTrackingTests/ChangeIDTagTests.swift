import Testing
import VHDX
import VHDXChangeTracking
import VHDXFormat

/// Change IDs carry their seal's random tag (TRACKING-FORMAT.md §4), so two copies of a disk
/// that seal the same epoch after they diverged never share an ID.
@Suite struct ChangeIDTagTests {
    @Test("the text form: tagged IDs round-trip, untagged ones of earlier builds still parse, malformed ones are refused")
    func textForm() throws {
        let id = ChangeID(virtualDiskID: .random(), trackingID: .random(), generation: 2, epoch: 77, tag: 0x00ab_cdef_0123_4567)
        #expect(id.description.hasSuffix(":2:77:00abcdef01234567"))
        #expect(ChangeID(text: id.description) == id)
        #expect(id.description.utf8.count <= 127)
        var legacy = id
        legacy.tag = 0
        #expect(legacy.description.split(separator: ":").count == 5)
        #expect(ChangeID(text: legacy.description) == legacy)
        let text = id.description
        for bad in ["", " ", text + "\n", " " + text, text.uppercased(), text + ":1", text.replacingOccurrences(of: ":00abcdef01234567", with: ":abcdef01234567"),
                    text.replacingOccurrences(of: ":00abcdef01234567", with: ":0000000000000000"), text.replacingOccurrences(of: ":00abcdef01234567", with: ":00abcdef0123456g"),
                    text.replacingOccurrences(of: ":2:77:", with: "::77:"), text.replacingOccurrences(of: ":2:77:", with: ":+2:77:")] {
            #expect(ChangeID(text: bad) == nil, "\(bad)")
        }
    }

    @Test("the header keeps each record's tag and the floor tag through encode and decode")
    func headerRoundTrip() throws {
        let g = TrackingGeometry(granule: 65536, historyLimit: 4, virtualSize: 1 << 30)
        var h = TrackingHeader(trackingID: .random(), virtualDiskID: .random(), geometry: g, dataWriteGUID: .random(), virtualSize: 1 << 30, time: 1)
        h.currentEpoch = 9
        h.records = (6...8).map { EpochRecord(epoch: UInt64($0), sealTime: 5, virtualSize: 1 << 30, slot: UInt32($0 - 6), runCount: 0, checksum: 0, flags: 0, tag: UInt64($0) * 0x1111) }
        h.floorTag = 0xfeed_beef
        h.resetText = String(repeating: "r", count: TrackingHeader.maxResetText)
        let decoded = try TrackingHeader(page: h.encode(), base: 0, logicalSectorSize: 512, blockSize: 32 << 20)
        #expect(decoded == h)
        #expect(decoded.tag(ofEpoch: 5) == 0xfeed_beef)
        #expect(decoded.tag(ofEpoch: 7) == 7 * 0x1111)
        #expect(decoded.tag(ofEpoch: 4) == nil)
    }

    @Test("the oldest retained ID still answers after its record left the history (its tag is kept), and only with that tag")
    func floorTagKeepsTheOldestIDAnswerable() throws {
        let storage = try TrackedDisk.make(size: 8 << 20, history: 2)
        let (image, tracker) = try TrackedDisk.open(storage)
        var ids: [ChangeID] = []
        for i in 0..<5 {
            try image.write([UInt8](repeating: UInt8(i + 1), count: 65536), at: UInt64(i) << 20)
            ids.append(try tracker.seal())
        }
        #expect(Set(ids.map(\.tag)).count == 5 && !ids.contains { $0.tag == 0 })
        // History 2 keeps the records of the last two epochs: the three newest IDs answer.
        #expect(tracker.retainedIDs == Array(ids.suffix(3)))
        let oldest = ids[2]
        #expect(try tracker.changes(since: oldest).ranges == [ChangedRange(offset: 3 << 20, length: 65536), ChangedRange(offset: 4 << 20, length: 65536)])
        var forged = oldest
        forged.tag &+= 1
        #expect(throws: ChangeTrackingError(.otherDisk, "")) { try tracker.changes(since: forged) }
        #expect(throws: ChangeTrackingError(.expired, "")) { try tracker.changes(since: ids[1]) }
        try image.close()
        // And after a reopen: the floor tag is on disk, not only in memory.
        let (again, t2) = try TrackedDisk.open(storage)
        #expect(t2.retainedIDs == Array(ids.suffix(3)))
        #expect(try t2.changes(since: oldest).ranges.count == 2)
        try again.close()
    }

    @Test("undoSeal takes a seal back when nothing happened since: the history and the answers are as before, and the ID never answers")
    func undoSeal() throws {
        let storage = try TrackedDisk.make(size: 8 << 20, history: 2)
        var (image, tracker) = try TrackedDisk.open(storage)
        var ids: [ChangeID] = []
        for i in 0..<3 {
            try image.write([UInt8](repeating: 9, count: 4096), at: UInt64(i) << 20)
            ids.append(try tracker.seal())
        }
        try image.write([UInt8](repeating: 7, count: 4096), at: 6 << 20)
        let before = tracker.retainedIDs
        let answer = try tracker.changes(since: before[0])
        let reserved = tracker.reserveNextID()
        let sealed = try tracker.seal()
        #expect(sealed == reserved)
        #expect(tracker.retainedIDs.first != before.first, "sealing past the history drops the oldest")
        try tracker.undoSeal(sealed)
        #expect(tracker.retainedIDs == before)
        #expect(try tracker.changes(since: before[0]) == answer)
        try image.close()
        (image, tracker) = try TrackedDisk.open(storage)
        #expect(tracker.retainedIDs == before)
        #expect(try tracker.changes(since: before[0]).ranges == answer.ranges)
        #expect(throws: ChangeTrackingError.self) { try tracker.changes(since: sealed) }
        // The next seal of that epoch gets a new tag: the taken-back ID stays unknown.
        let next = try tracker.seal()
        #expect(next.epoch == sealed.epoch && next != sealed)
        #expect(throws: ChangeTrackingError(.otherDisk, "")) { try tracker.changes(since: sealed) }
        // Nothing to take back once something changed after a seal.
        try image.write([UInt8](repeating: 1, count: 512), at: 0)
        #expect(throws: VHDXError.self) { try tracker.undoSeal(next) }
        try image.close()
    }
}
