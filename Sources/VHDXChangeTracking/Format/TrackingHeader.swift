import VHDXFormat

/// The first page of the tracking region: what is tracked, how, and where its sets are
/// (TRACKING-FORMAT.md §3). Changed only through the VHDX log, like the BAT.
public struct TrackingHeader: Equatable, Sendable {
    public static let signature: [UInt8] = Array("VXTRACK1".utf8)
    public static let version: UInt32 = 1
    public static let checksumOffset = 12
    public static let maxResetText = 256
    static let recordsOffset = 520
    /// After the longest reset text (184 + 256).
    static let floorTagOffset = 440

    public enum Flag {
        /// A session may have written since the current epoch's set was last persisted: the
        /// coarse map must be folded into it on the next open.
        public static let dirty: UInt32 = 1
    }

    /// Why tracking was last reset.
    public enum ResetCode: UInt32, Sendable {
        case none = 0
        /// The disk's DataWriteGuid changed without tracking seeing the session.
        case foreignWriter = 1
        /// The tracking region failed validation.
        case damaged = 2
        /// Something the tracker cannot follow changed the disk (a resize it did not see…).
        case other = 3
    }

    public var trackingID: GUID
    public var virtualDiskID: GUID
    public var geometry: TrackingGeometry
    public var flags: UInt32
    /// The DataWriteGuid the disk has after the last session tracking saw end.
    public var expectedDataWriteGUID: GUID
    /// The DataWriteGuid a tracked session recorded before writing it (zero: none open).
    public var pendingDataWriteGUID: GUID
    public var generation: UInt32
    /// The open epoch's number; epochs below it are sealed.
    public var currentEpoch: UInt64
    /// The slot holding the open epoch's persisted set (`noSlot`: empty).
    public var currentSlot: UInt32
    public var currentRunCount: UInt32
    public var currentChecksum: UInt32
    public var currentFlags: UInt32
    /// The virtual size the state describes.
    public var trackedSize: UInt64
    /// Bytes of virtual disk per coarse-map bit; only ever grows (a resize past what the map
    /// covers folds bit pairs), so a set bit never covers less than when it was set.
    public var coarseUnit: UInt64
    /// The first epoch of this generation: IDs sealed before it belong to an earlier one.
    public var generationStartEpoch: UInt64
    public var enabledTime: UInt64
    public var resetTime: UInt64
    public var resetCode: ResetCode
    public var resetText: String
    /// The tag of the epoch just before the oldest record (dropped from the history, still
    /// answerable as a "since" point); 0 when there is none or it was sealed without a tag.
    public var floorTag: UInt64
    /// Sealed epochs kept, oldest first, consecutive.
    public var records: [EpochRecord]

    public static let noSlot = UInt32.max

    public init(trackingID: GUID, virtualDiskID: GUID, geometry: TrackingGeometry, dataWriteGUID: GUID,
                virtualSize: UInt64, time: UInt64) {
        self.trackingID = trackingID
        self.virtualDiskID = virtualDiskID
        self.geometry = geometry
        flags = 0
        expectedDataWriteGUID = dataWriteGUID
        pendingDataWriteGUID = .zero
        generation = 0
        currentEpoch = 1
        currentSlot = TrackingHeader.noSlot
        currentRunCount = 0
        currentChecksum = 0
        currentFlags = 0
        trackedSize = virtualSize
        coarseUnit = geometry.coarseUnit(virtualSize: virtualSize)
        generationStartEpoch = 1
        enabledTime = time
        resetTime = 0
        resetCode = .none
        resetText = ""
        floorTag = 0
        records = []
    }

    public var isDirty: Bool { flags & Flag.dirty != 0 }
    /// The newest epoch sealed in this generation.
    public var latestSealedEpoch: UInt64? { currentEpoch > generationStartEpoch ? currentEpoch - 1 : nil }
    /// The tag `epoch` was sealed with, if its ID can still be formed: a record's, or the floor's
    /// for the epoch just before the oldest record.
    public func tag(ofEpoch epoch: UInt64) -> UInt64? {
        if let r = records.first(where: { $0.epoch == epoch }) { return r.tag }
        if let first = records.first, epoch == first.epoch - 1, epoch >= generationStartEpoch { return floorTag }
        return nil
    }

    /// The oldest epoch whose ID can still be answered: every record after it is kept.
    public var oldestAnswerableEpoch: UInt64? {
        guard let latest = latestSealedEpoch else { return nil }
        return max(generationStartEpoch, (records.first?.epoch ?? latest + 1) - 1)
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: TrackingGeometry.pageSize)
        w.write(TrackingHeader.signature)
        w.write(TrackingHeader.version)
        w.write(UInt32(0))  // checksum
        w.write(trackingID)
        w.write(virtualDiskID)
        w.write(geometry.granule)
        w.write(geometry.historyLimit)
        w.write(geometry.slotPages)
        w.write(flags)
        w.write(UInt32(0))
        w.write(expectedDataWriteGUID)
        w.write(pendingDataWriteGUID)
        w.write(generation)
        w.write(UInt32(0))
        w.write(currentEpoch)
        w.write(currentSlot)
        w.write(currentRunCount)
        w.write(currentChecksum)
        w.write(currentFlags)
        w.write(trackedSize)
        w.write(coarseUnit)
        w.write(generationStartEpoch)
        w.write(enabledTime)
        w.write(resetTime)
        w.write(resetCode.rawValue)
        let text = Array(resetText.utf8.prefix(TrackingHeader.maxResetText))
        w.write(UInt32(text.count))
        w.write(text)
        w.pad(to: TrackingHeader.floorTagOffset)
        w.write(floorTag)
        w.pad(to: 512)
        w.write(UInt32(records.count))
        w.write(UInt32(0))
        for r in records { r.encode(into: &w) }
        w.pad(to: TrackingGeometry.pageSize)
        w.set(CRC32C.checksum(w.bytes), at: TrackingHeader.checksumOffset)
        return w.bytes
    }

    /// Decodes and validates a header page: signature, version, checksum, and every count
    /// and number against the bounds of the format and of `blockSize` / `logicalSectorSize`.
    public init(page: [UInt8], base: UInt64, logicalSectorSize: UInt64, blockSize: UInt64) throws(FormatError) {
        let s = "tracking header"
        guard page.count == TrackingGeometry.pageSize else { throw FormatError(.truncated, s, at: base, "\(page.count) bytes, need 4096") }
        var r = ByteReader(page, base: base, structure: s)
        try r.expectSignature(TrackingHeader.signature)
        let version = try r.readUInt32("version")
        guard version == TrackingHeader.version else { throw FormatError(.unsupported, s, field: "version", at: base + 8, "version \(version); this build knows \(TrackingHeader.version)") }
        let stored = try r.readUInt32("checksum")
        let computed = CRC32C.checksum(page, zeroingFieldAt: TrackingHeader.checksumOffset)
        guard stored == computed else { throw FormatError(.badChecksum, s, field: "checksum", at: base + 12, "stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16))") }
        trackingID = try r.readGUID("trackingID")
        virtualDiskID = try r.readGUID("virtualDiskID")
        let granule = try r.readUInt64("granule")
        let history = try r.readUInt32("historyLimit")
        let slotPages = try r.readUInt32("slotPages")
        geometry = TrackingGeometry(granule: granule, historyLimit: history, slotPages: slotPages)
        if let problem = geometry.validate(logicalSectorSize: logicalSectorSize, blockSize: blockSize) {
            throw FormatError(.outOfRange, s, field: "geometry", at: base + 48, problem)
        }
        flags = try r.readUInt32("flags")
        _ = try r.readUInt32("reserved")
        expectedDataWriteGUID = try r.readGUID("expectedDataWriteGUID")
        pendingDataWriteGUID = try r.readGUID("pendingDataWriteGUID")
        generation = try r.readUInt32("generation")
        _ = try r.readUInt32("reserved")
        currentEpoch = try r.readUInt64("currentEpoch")
        currentSlot = try r.readUInt32("currentSlot")
        currentRunCount = try r.readUInt32("currentRunCount")
        currentChecksum = try r.readUInt32("currentChecksum")
        currentFlags = try r.readUInt32("currentFlags")
        trackedSize = try r.readUInt64("trackedSize")
        coarseUnit = try r.readUInt64("coarseUnit")
        guard coarseUnit.nonzeroBitCount == 1, coarseUnit >= granule,
              trackedSize <= coarseUnit &* TrackingGeometry.coarseBits, coarseUnit <= UInt64(1) << 46 else {
            throw FormatError(.outOfRange, s, field: "coarseUnit", at: base + 144, "coarse unit \(coarseUnit) cannot cover \(trackedSize) bytes in \(TrackingGeometry.coarseBits) bits")
        }
        guard trackedSize <= UInt64(64) << 40 else { throw FormatError(.outOfRange, s, field: "trackedSize", at: base + 136, "\(trackedSize) bytes") }
        generationStartEpoch = try r.readUInt64("generationStartEpoch")
        enabledTime = try r.readUInt64("enabledTime")
        resetTime = try r.readUInt64("resetTime")
        let code = try r.readUInt32("resetCode")
        guard let rc = ResetCode(rawValue: code) else { throw FormatError(.outOfRange, s, field: "resetCode", at: r.fileOffset - 4, "unknown reset code \(code)") }
        resetCode = rc
        let textLength = Int(try r.readUInt32("resetTextLength"))
        guard textLength <= TrackingHeader.maxResetText else { throw FormatError(.outOfRange, s, field: "resetTextLength", at: r.fileOffset - 4, "\(textLength) > \(TrackingHeader.maxResetText)") }
        resetText = String(decoding: try r.readBytes(textLength, "resetText"), as: UTF8.self)
        try r.seek(to: TrackingHeader.floorTagOffset, "floorTag")
        floorTag = try r.readUInt64("floorTag")
        try r.seek(to: 512, "recordCount")
        let count = Int(try r.readUInt32("recordCount"))
        guard count <= Int(history) else { throw FormatError(.outOfRange, s, field: "recordCount", at: base + 512, "\(count) records, history keeps \(history)") }
        try r.skip(4, "reserved")
        var records: [EpochRecord] = []
        for _ in 0..<count { records.append(try EpochRecord(parsing: &r)) }
        self.records = records
        try validate(base: base)
    }

    /// Cross-field rules: slots in range and distinct, epochs consecutive and below the open one.
    private func validate(base: UInt64) throws(FormatError) {
        let s = "tracking header"
        let slots = geometry.slotCount
        let slotBytes = geometry.slotBytes
        func fits(_ count: UInt32, _ flags: UInt32) -> Bool { StoredSet.byteCount(count: count, flags: flags) <= slotBytes }
        guard currentEpoch >= 1, currentEpoch < UInt64(1) << 62 else { throw FormatError(.outOfRange, s, field: "currentEpoch", at: base + 112, "\(currentEpoch)") }
        guard generationStartEpoch >= 1, generationStartEpoch <= currentEpoch else {
            throw FormatError(.inconsistent, s, field: "generationStartEpoch", at: base + 152, "\(generationStartEpoch) is not in 1...\(currentEpoch)")
        }
        if let first = records.first, first.epoch < generationStartEpoch {
            throw FormatError(.inconsistent, s, field: "records", at: base + 520, "record of epoch \(first.epoch) predates the generation's start \(generationStartEpoch)")
        }
        var used = Set<UInt32>()
        if currentSlot != TrackingHeader.noSlot {
            guard currentSlot < slots, fits(currentRunCount, currentFlags) else {
                throw FormatError(.outOfRange, s, field: "currentSlot", at: base + 120, "slot \(currentSlot) holding \(currentRunCount) (flags \(currentFlags)) is out of range (\(slots) slots of \(slotBytes) bytes)")
            }
            used.insert(currentSlot)
        } else if currentRunCount != 0 {
            throw FormatError(.inconsistent, s, field: "currentRunCount", at: base + 124, "\(currentRunCount) runs but no slot")
        }
        var expected = records.first.map(\.epoch) ?? 0
        for (i, rec) in records.enumerated() {
            let at = base + UInt64(TrackingHeader.recordsOffset + i * EpochRecord.encodedSize)
            guard rec.slot < slots, fits(rec.runCount, rec.flags), used.insert(rec.slot).inserted else {
                throw FormatError(.outOfRange, s, field: "record \(i)", at: at, "slot \(rec.slot) (\(rec.runCount) runs) is out of range or used twice")
            }
            guard rec.epoch == expected, rec.epoch >= 1, rec.epoch < currentEpoch else {
                throw FormatError(.inconsistent, s, field: "record \(i)", at: at, "epoch \(rec.epoch) breaks the sequence (expected \(expected), open epoch \(currentEpoch))")
            }
            expected += 1
        }
        if let last = records.last, last.epoch != currentEpoch - 1 {
            throw FormatError(.inconsistent, s, field: "records", at: base + 512, "the newest record is epoch \(last.epoch) but the open epoch is \(currentEpoch)")
        }
    }
}
