import VHDXFormat

/// An open VHDX image.
///
/// Lifecycle: open → (headers → log: replay to the file, or in memory when read-only → region
/// tables → metadata → BAT on demand) → read / map → close (deinit).
///
/// A read-only open never writes: a pending log is replayed into a `ReplayOverlay` and every
/// metadata read goes through it, so reads return the replayed content while the file's bytes
/// stay identical.
public final class VHDXFile {
    /// The file itself.
    public let storage: Storage
    /// What metadata is read through: the file, or the replay overlay.
    let io: Storage
    public internal(set) var layout: ImageLayout
    /// What open noticed that did not stop it (damaged redundant copies, stale log, …).
    public let findings: [Finding]
    /// Set when a pending log was found and replayed.
    public let logReplay: LogReplayInfo?
    var bat: BATTable
    /// The parent this differencing image reads through, opened read-only (see `attachParents`).
    public internal(set) var parent: VHDXFile?
    /// How `parent` was found and accepted.
    public internal(set) var parentLink: ParentLink?

    // Write-session state (writable opens only).
    var journal = Journal()
    var dataWriteGUIDRenewed = false
    /// Where the next block goes: past every object the image references.
    var nextFreeOffset: UInt64 = 0
    /// Told about every change to virtual content (write, zero, trim, resize) before it is
    /// applied; a throw cancels the change. Change tracking hooks in here.
    public var changeObserver: ((ChangeKind, Range<UInt64>) throws(VHDXError) -> Void)?

    public var header: Header { layout.header }
    public var geometry: BATGeometry { layout.geometry }
    public var virtualSize: UInt64 { layout.virtualDiskSize }
    public var blockSize: UInt64 { UInt64(layout.fileParameters.blockSize) }
    public var isWritable: Bool { storage.isWritable }

    public enum DiskType: String, Sendable { case fixed, dynamic, differencing }

    public var diskType: DiskType {
        let fp = layout.fileParameters
        if fp.hasParent { return .differencing }
        return fp.leaveBlockAllocated ? .fixed : .dynamic
    }

    /// Opens the file at `path`; read-only unless `writable`.
    public static func open(path: String, writable: Bool = false) throws(VHDXError) -> VHDXFile {
        let storage = try FileStorage(path: path, mode: writable ? .readWrite : .readOnly)
        return try VHDXFile(storage: storage)
    }

    /// Opens an image on any storage. A writable storage gets the spec's writable-open
    /// treatment: headers renewed with a new FileWriteGuid, then any pending log replayed into
    /// the file and marked applied.
    public init(storage: Storage) throws(VHDXError) {
        self.storage = storage
        var loader = ImageLoader(storage: storage)
        let (identifier, choice0) = try loader.loadHeaders()
        var choice = choice0
        let sequence = try loader.loadLog(header: choice.current)
        var io: Storage = storage
        var replay: LogReplayInfo?
        if let sequence {
            replay = LogReplayInfo(sequence, inMemory: !storage.isWritable)
        }
        if storage.isWritable {
            // Renew FileWriteGuid before any other change, replay counting as a change.
            var h = choice.current
            h.fileWriteGUID = .random()
            (choice.current, choice.slot) = try HeaderUpdater.write(h, currentSlot: choice.slot, to: storage)
            if let sequence {
                try LogReplay.apply(sequence, to: storage)
                var applied = choice.current
                applied.logGUID = .zero
                (choice.current, choice.slot) = try HeaderUpdater.write(applied, currentSlot: choice.slot, to: storage)
                loader.note(Finding(.notice, "log", at: choice.current.logOffset,
                                    "replayed \(sequence.entries.count) pending log entries into the file"))
            }
        } else if let sequence {
            io = try ReplayOverlay(base: storage, sequence: sequence)
            loader.note(Finding(.notice, "log", at: choice.current.logOffset,
                                "applied \(sequence.entries.count) pending log entries (sequence \(replay!.firstSequenceNumber)...\(replay!.lastSequenceNumber)) in memory; the file is unchanged",
                                repairable: true))
        }
        self.io = io
        let layout = try loader.loadLayout(io: io, identifier: identifier, choice: choice)
        self.layout = layout
        self.findings = loader.findings
        self.logReplay = replay
        self.bat = BATTable(storage: io, regionOffset: layout.batRegion.fileOffset, entryCount: layout.batEntriesUsed)
        if storage.isWritable { nextFreeOffset = try referencedEnd() }
    }

    /// The end of the last object the image references (header section, log, regions, blocks),
    /// rounded up to 1 MiB. Space past it is unreferenced, so new blocks may reuse it.
    func referencedEnd() throws(VHDXError) -> UInt64 {
        var end = Layout.headerSectionSize
        end = max(end, layout.header.logOffset + UInt64(layout.header.logLength))
        for r in layout.regionTable.entries { end = max(end, r.end) }
        let g = geometry
        try forEachBATEntry { (index, entry) throws(VHDXError) in
            let state = entry.state
            guard entry.fileOffsetMB != 0, state == 6 || state == 7 else { return }
            let isSB = index % (g.chunkRatio + 1) == g.chunkRatio
            end = max(end, entry.fileOffset &+ (isSB ? Layout.sectorBitmapBlockSize : g.blockSize))
        }
        return end.roundedUp(to: Layout.MiB) ?? end
    }

    /// Reads bytes the image stores at `fileOffset` (payload found through the BAT), through
    /// the replay overlay when a pending log was applied in memory.
    public func readStored(into buffer: UnsafeMutableRawBufferPointer, at fileOffset: UInt64) throws(VHDXError) {
        try io.read(into: buffer, at: fileOffset)
    }

    /// The BAT entry of payload block `block`.
    public func payloadEntry(block: UInt64) throws(VHDXError) -> BATEntry {
        try bat.entry(geometry.payloadIndex(block: block))
    }

    /// The BAT entry of the sector bitmap of `chunk`.
    public func sectorBitmapEntry(chunk: UInt64) throws(VHDXError) -> BATEntry? {
        let i = geometry.sectorBitmapIndex(chunk: chunk)
        return i < bat.entryCount ? try bat.entry(i) : nil
    }

    /// Every BAT entry in index order, streamed a page at a time.
    public func forEachBATEntry(_ body: (UInt64, BATEntry) throws(VHDXError) -> Void) throws(VHDXError) {
        try bat.forEach(body)
    }
}
