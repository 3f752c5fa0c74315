#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX
import VHDXFormat

/// Resilient change tracking of one VHDX image: the engine's `ChangeObserver`, the state kept
/// in the image's tracking region, and the answers to "what changed since this ID".
///
/// What makes it resilient (TRACKING-FORMAT.md §5):
/// - Write-ahead coarse map: before data is written into a coarse region not yet marked in
///   the open epoch, its bit (and the dirty flag) is committed through the log, in the same
///   entry as the write's own metadata or before any in-place data.
/// - Fine set: the open epoch's granules in memory, persisted at flush, close and seal. After
///   an unclean stop (dirty flag set) the coarse map is folded in: larger, never smaller.
/// - Foreign writers: a tracked session records the DataWriteGuid it is about to write before
///   writing it; any other DataWriteGuid on open means another writer changed the disk, and
///   every earlier ID is answered with "tracking reset".
public final class ChangeTracker: ChangeObserver {
    /// The region's GUID (required flag clear: readers that do not know it skip it).
    public static let regionGUID = GUID(0xbdb5a2c1, 0xb103, 0x477a, 0xafee_d559ea35b8f2)  // {bdb5a2c1-b103-477a-afee-d559ea35b8f2}

    /// Unowned: an attached tracker is the image's observer (the image owns it). A view that
    /// is not the observer keeps its image alive through `keepAlive`.
    unowned let image: VHDXFile
    private var keepAlive: VHDXFile?
    let region: RegionTableEntry
    package internal(set) var header: TrackingHeader
    /// The open epoch's changed granules (persisted set, folded coarse map, this session).
    var current = GranuleSet()
    /// The coarse map page as it is in the file (plus staged marks).
    var coarse: [UInt8]
    /// Mark-ahead width in coarse bits, doubling per commit within an epoch (see `markCoarse`).
    var window: UInt64 = 1
    /// Changes since the set was last persisted.
    var unpersisted = false
    /// When the set was last persisted (s since 1970), and how often a flush persists it.
    var lastPersist: UInt64 = 0
    static let persistInterval: UInt64 = 30
    /// The open epoch's set was coarsened when stored, or a coarse map folded into it: answers
    /// that include it are marked as not exact.
    var currentCoarsened = false
    /// The coarse map was cleared in memory (a reset, a seal) and must be written with the header.
    var coarseNeedsWrite = false
    /// A reset found at open and not yet written (read-only opens never write it).
    var pendingReset: (code: TrackingHeader.ResetCode, text: String)?
    /// Fault injection for the crash tests: the write-ahead coarse map is not written (nor the
    /// dirty flag it sets), to show the tests fail without it. Never set outside tests.
    package var skipsCoarseMarks = false
    /// The tag the next seal uses, once `reserveNextID` named it.
    var reservedTag: UInt64?
    /// The state before this handle's last seal, the header after it and the ID it returned.
    var sealUndo: (before: SealUndo, after: TrackingHeader, id: ChangeID)?
    /// What open noticed (a fold after an unclean stop, a reset), for `status` and `check`.
    public private(set) var notes: [String] = []

    public var path: String { image.path }

    init(image: VHDXFile, region: RegionTableEntry, header: TrackingHeader, coarse: [UInt8]) {
        self.image = image
        self.region = region
        self.header = header
        self.coarse = coarse
    }

    /// Attaches tracking to `image` if it has a tracking region (nil otherwise), checking the
    /// state against the disk: outside writers, a damaged region, an unclean stop.
    @discardableResult
    public static func attach(to image: VHDXFile) throws(VHDXError) -> ChangeTracker? {
        try view(of: image, observe: image.isWritable)
    }

    /// The image's tracker without making it the image's observer when `observe` is false (a
    /// read-only look at a layer of a chain).
    package static func view(of image: VHDXFile, observe: Bool) throws(VHDXError) -> ChangeTracker? {
        if let existing = image.observer as? ChangeTracker { return existing }
        guard let region = image.region(regionGUID) else { return nil }
        let tracker: ChangeTracker
        do {
            tracker = try load(image: image, region: region)
        } catch {
            if error.code == .io { throw error }
            let reason = (error.cause as? DamagedRegion)?.text ?? "the tracking region cannot be read: \(error.message)"
            tracker = try fresh(image: image, region: region, reason: reason)
        }
        if observe { image.observer = tracker } else { tracker.keepAlive = image }
        return tracker
    }

    struct DamagedRegion: Error { let text: String }

    /// A damaged region, signalled through the engine's typed error channel (`attach` turns it
    /// into a reset rather than a failure to open).
    static func damaged(_ text: String) -> VHDXError {
        VHDXError(.corrupt, text, cause: DamagedRegion(text: text))
    }

    private static func load(image: VHDXFile, region: RegionTableEntry) throws(VHDXError) -> ChangeTracker {
        guard UInt64(region.length) >= TrackingGeometry.slotsOffset else {
            throw damaged("the tracking region is \(region.length) bytes, too small for its header")
        }
        let page = try image.readMetadataPage(at: region.fileOffset)
        let header: TrackingHeader
        do {
            header = try TrackingHeader(page: page, base: region.fileOffset, logicalSectorSize: UInt64(image.layout.logicalSectorSize), blockSize: image.blockSize)
        } catch {
            throw damaged("the tracking header is damaged: \(error)")
        }
        guard header.geometry.regionLength <= UInt64(region.length) else {
            throw damaged("the tracking header describes \(header.geometry.regionLength) bytes, the region holds \(region.length)")
        }
        let coarse = try image.readMetadataPage(at: region.fileOffset + TrackingGeometry.coarseOffset)
        let tracker = ChangeTracker(image: image, region: region, header: header, coarse: coarse)
        try tracker.checkAgainstDisk()
        return tracker
    }

    /// A tracker over a region whose content cannot be trusted: a new header in memory, the
    /// reset recorded as pending (written on the next writable use).
    private static func fresh(image: VHDXFile, region: RegionTableEntry, reason: String) throws(VHDXError) -> ChangeTracker {
        var geometry = TrackingGeometry(granule: TrackingGeometry.defaultGranule, historyLimit: TrackingGeometry.defaultHistory, virtualSize: image.virtualSize)
        geometry.granule = min(max(geometry.granule, UInt64(image.layout.logicalSectorSize)), image.blockSize)
        while geometry.regionLength > UInt64(region.length) && geometry.historyLimit > 1 { geometry.historyLimit -= 1 }
        if geometry.regionLength > UInt64(region.length) { geometry.slotPages = TrackingGeometry.minSlotPages }
        var header = TrackingHeader(trackingID: .random(), virtualDiskID: image.layout.virtualDiskID, geometry: geometry,
                                    dataWriteGUID: image.header.dataWriteGUID, virtualSize: image.virtualSize, time: now())
        header.generation = 1
        let tracker = ChangeTracker(image: image, region: region, header: header, coarse: [UInt8](repeating: 0, count: 4096))
        tracker.pendingReset = (.damaged, reason)
        tracker.notes.append("tracking reset: \(reason)")
        return tracker
    }

    /// Open-time rules, in order: the disk's identity, outside writers (DataWriteGuid), the
    /// persisted set, an unclean stop (fold the coarse map).
    private func checkAgainstDisk() throws(VHDXError) {
        let dwg = image.header.dataWriteGUID
        if header.virtualDiskID != image.layout.virtualDiskID {
            noteReset(.other, "the disk's VirtualDiskId changed from {\(header.virtualDiskID)} to {\(image.layout.virtualDiskID)}")
            return
        }
        if dwg != header.expectedDataWriteGUID && (header.pendingDataWriteGUID.isZero || dwg != header.pendingDataWriteGUID) {
            noteReset(.foreignWriter, "the disk was modified outside change tracking (its DataWriteGuid is {\(dwg)}; tracking last saw {\(header.expectedDataWriteGUID)})")
            return
        }
        if header.trackedSize != image.virtualSize {
            noteReset(.other, "the disk was resized outside change tracking (\(header.trackedSize) → \(image.virtualSize) bytes)")
            return
        }
        if header.currentSlot != TrackingHeader.noSlot {
            do {
                // A shrink commits the new tracked size with the header and rewrites the set at the
                // next persist, so a crash between them leaves runs past the end: granules the disk
                // no longer has, not damage. They are clipped to the tracked size before they reach
                // the in-memory set (a run up to 64 TiB would insert a leaf per 4,096 granules).
                let stored = try readSet(slot: header.currentSlot, count: header.currentRunCount, flags: header.currentFlags,
                                         checksum: header.currentChecksum)
                let limit = granuleCount(header.trackedSize)
                current.insert(stored.compactMap { run in
                    run.start < limit ? GranuleRun(start: run.start, count: min(run.end, limit) - run.start) : nil
                })
                if header.currentFlags & StoredSet.Flag.coarsened != 0 { currentCoarsened = true }
            } catch {
                // A device that cannot be read now says nothing about the set: never a reset.
                if error.code == .io { throw error }
                noteReset(.damaged, "the open epoch's change set is damaged: \(error)")
                return
            }
        }
        if header.isDirty {
            let folded = foldCoarseMap()
            currentCoarsened = currentCoarsened || folded > 0
            notes.append("the last session did not close cleanly: \(folded) coarse regions of \(header.coarseUnit) bytes were folded into the open epoch's changes (the next answer may be larger, never smaller)")
            unpersisted = true
        }
    }

    func noteReset(_ code: TrackingHeader.ResetCode, _ text: String) {
        pendingReset = (code, text)
        notes.append("tracking reset: \(text)")
    }

    /// Adds every granule of every marked coarse region to the open epoch's set.
    @discardableResult
    func foldCoarseMap() -> Int {
        var n = 0
        let granulesPerBit = header.coarseUnit / header.geometry.granule
        let limit = granuleCount(header.trackedSize)
        for byte in 0..<coarse.count where coarse[byte] != 0 {
            for bit in 0..<8 where coarse[byte] >> UInt8(bit) & 1 == 1 {
                let b = UInt64(byte * 8 + bit)
                let start = b * granulesPerBit
                guard start < limit else { continue }
                current.insert(start..<min(limit, start + granulesPerBit))
                n += 1
            }
        }
        return n
    }

    /// Granules needed to cover `bytes`.
    func granuleCount(_ bytes: UInt64) -> UInt64 {
        (bytes + header.geometry.granule - 1) / header.geometry.granule
    }

    /// Reads and validates a stored set (run list or bitmap). `upTo`: the disk size the set may
    /// cover (a sealed set: 64 TiB, as the disk may have been larger when it was sealed).
    func readSet(slot: UInt32, count: UInt32, flags: UInt32, checksum: UInt32, upTo bytes: UInt64 = UInt64(64) << 40) throws(VHDXError) -> [GranuleRun] {
        let n = StoredSet.byteCount(count: count, flags: flags)
        guard n > 0 else { return [] }
        let at = region.fileOffset + header.geometry.slotOffset(slot)
        let raw = try image.readMetadataPage(at: at, count: (n + 4095) / 4096 * 4096)
        do {
            return try StoredSet.decode(raw, count: count, flags: flags, checksum: checksum, granuleLimit: granuleCount(bytes), base: at)
        } catch {
            throw VHDXError.format(error, path: image.path)
        }
    }

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(max(0, ts.tv_sec))
    }
}
