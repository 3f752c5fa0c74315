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
    /// The file itself (behind the write gate when writable). Not public: every change to the
    /// file goes through the engine's operations, which the change observer sees.
    package let storage: Storage
    /// What metadata is read through: the file, or the replay overlay (until a writable open's
    /// first change replays the log into the file).
    var io: Storage
    package internal(set) var layout: ImageLayout
    /// What open noticed that did not stop it (damaged redundant copies, stale log, …).
    public let findings: [Finding]
    /// Set when a pending log was found: replayed in memory, or (after a writable open's first
    /// change) into the file.
    public internal(set) var logReplay: LogReplayInfo?
    /// A writable open's pending log, until `prepareForWrites` writes it into the file.
    var pendingLog: LogSequence?
    /// The BAT, read through a page cache that only a committed `MetadataTransaction` changes.
    let bat: BATTable
    /// Sector-bitmap pages read lately (differencing images); emptied by every metadata change.
    let bitmapPages = SectorBitmapCache()
    /// The parent this differencing image reads through, opened read-only (see `attachParents`).
    public internal(set) var parent: VHDXFile?
    /// How `parent` was found and accepted.
    public internal(set) var parentLink: ParentLink?

    /// The write path's state (writable opens only): the log session, the free-space cursor,
    /// the observer's staged pages. Changed only through its own operations (WriteSession.swift).
    let session: WriteSession
    /// Told about every change to virtual content before it is applied (`ChangeObserver`).
    package var observer: ChangeObserver?
    /// The metadata log's session state (read-only view).
    var journal: Journal { session.journal }
    /// Where the next block goes (read-only view).
    var nextFreeOffset: UInt64 { session.nextFreeOffset }

    /// The file's path (or the storage's name).
    public var path: String { storage.name }
    /// The file's size in bytes.
    public func fileSize() throws(VHDXError) -> UInt64 { try storage.size() }
    /// The current header: DataWriteGuid, FileWriteGuid, LogGuid, version.
    public var header: Header { layout.header }
    package var geometry: BATGeometry { layout.geometry }
    /// The virtual disk's size in bytes.
    public var virtualSize: UInt64 { layout.virtualDiskSize }
    /// The payload block size in bytes.
    public var blockSize: UInt64 { UInt64(layout.fileParameters.blockSize) }
    /// Whether the image was opened for writing.
    public var isWritable: Bool { storage.isWritable }
    /// The disk's identity, shared by every file of a differencing chain.
    public var virtualDiskID: GUID { layout.virtualDiskID }
    /// Bytes per logical sector (512 or 4096).
    public var logicalSectorSize: UInt32 { layout.logicalSectorSize }
    /// Bytes per physical sector (512 or 4096).
    public var physicalSectorSize: UInt32 { layout.physicalSectorSize }
    /// A differencing image's parent locator (nil for fixed and dynamic images).
    public var parentLocator: ParentLocator? { layout.parentLocator }

    /// The three kinds of VHDX image.
    public enum DiskType: String, Sendable {
        /// Every block allocated at creation.
        case fixed
        /// Blocks allocated on first write.
        case dynamic
        /// Holds what differs from a parent image.
        case differencing
    }

    /// Fixed (every block allocated), dynamic, or differencing (has a parent).
    public var diskType: DiskType {
        let fp = layout.fileParameters
        if fp.hasParent { return .differencing }
        return fp.leaveBlockAllocated ? .fixed : .dynamic
    }

    /// A writable handle dropped without `close()` is closed here, so the image is left as
    /// `close()` leaves it: flushed, its log empty. Errors cannot be reported from here (call
    /// `close()` to see them). Change tracking is let go first (its observer cannot run while
    /// the image is being destroyed): its fine set is not persisted, so the next open folds in
    /// the write-ahead coarse map — answers may grow, never shrink.
    /// Only a handle with something left to finish (an open log, staged pages) is closed: a
    /// second close would flush again for nothing.
    deinit {
        // Nothing to finish when nothing was written through this handle (the gate never
        // opened: the file is as it was found, a pending log still there for the next open).
        guard storage.isWritable, (storage as? WriteGate)?.opened ?? true,
              session.hasUnfinishedWork else { return }
        observer = nil
        try? close()
    }

    /// Opens the file at `path`; read-only unless `writable`.
    /// A differencing image's parents are resolved here too (always read-only), as `parents`
    /// says: if the chain cannot be resolved the open fails, naming every path tried, instead
    /// of a later read failing where it reaches the parent.
    public static func open(path: String, writable: Bool = false, parents: ParentOptions = .default) throws(VHDXError) -> VHDXFile {
        try openChain(path: path, writable: writable, parents: parents)
    }

    /// This file alone, parents not opened (what `map --own`, `reparent` and the engine's own
    /// steps need); reads that reach a missing parent fail.
    package static func openFile(path: String, writable: Bool = false) throws(VHDXError) -> VHDXFile {
        let storage = try FileStorage(path: path, mode: writable ? .readWrite : .readOnly)
        return try VHDXFile(storage: storage)
    }

    /// Opens an image on any storage.
    ///
    /// Nothing is written by the open itself. Everything is decoded and validated first
    /// (through an in-memory replay of a pending log); a writable open also refuses an image
    /// whose blocks or regions lie outside the file or overlap (`WriteSafety`), since writing
    /// into it would grow the file without bound or cross-link data. Only the first change
    /// then renews FileWriteGuid and replays the log into the file (`prepareForWrites`), so
    /// a command refused after the open leaves the file byte-identical.
    package init(storage base: Storage) throws(VHDXError) {
        var loader = ImageLoader(storage: base)
        let (identifier, choice) = try loader.loadHeaders(forWriting: base.isWritable)
        let sequence = try loader.loadLog(header: choice.current)
        var io: Storage = base
        if let sequence {
            io = try ReplayOverlay(base: base, sequence: sequence)
            if !base.isWritable {
                loader.note(Finding(.notice, .pendingLog, "log", at: choice.current.logOffset,
                                    "applied \(sequence.entries.count) pending log entries (sequence \(sequence.entries.first!.entry.header.sequenceNumber)...\(sequence.head.sequenceNumber)) in memory; the file is unchanged",
                                    repairable: true))
            } else {
                loader.note(Finding(.notice, .pendingLog, "log", at: choice.current.logOffset,
                                    "\(sequence.entries.count) pending log entries are applied in memory and written into the file before the first change"))
            }
        }
        let layout = try loader.loadLayout(io: io, identifier: identifier, choice: choice)
        let end = base.isWritable ? try WriteSafety.validate(layout: layout, io: io, fileSize: try io.size(), path: base.name) : 0
        let gate = base.isWritable ? WriteGate(base: base) : nil
        self.storage = gate ?? base
        self.io = io
        self.layout = layout
        self.findings = loader.findings
        self.logReplay = sequence.map { LogReplayInfo($0, inMemory: true) }
        self.pendingLog = base.isWritable ? sequence : nil
        self.bat = BATTable(storage: io, regionOffset: layout.batRegion.fileOffset, entryCount: layout.batEntriesUsed)
        self.session = WriteSession(nextFreeOffset: end)
        // Weak: a handle being destroyed (deinit) must not prepare anything; the gate then
        // stays shut and nothing is written.
        gate?.prepare = { [weak self] () throws(VHDXError) in
            guard let self else { throw VHDXError(.io, "the image handle is gone", path: base.name) }
            try self.prepareForWrites(base)
        }
    }

    /// The spec's writable-open steps, run before the first change reaches the file: renew
    /// FileWriteGuid (replay counts as a change), then replay a pending log into the file and
    /// mark it applied. Reads switch from the in-memory replay to the file, which now holds
    /// the same bytes.
    private func prepareForWrites(_ file: Storage) throws(VHDXError) {
        var h = layout.header
        h.fileWriteGUID = .random()
        (layout.header, layout.headerSlot) = try HeaderUpdater.write(h, currentSlot: layout.headerSlot, to: file)
        guard let sequence = pendingLog else { return }
        try observer?.willReplayLog(self)
        try LogReplay.apply(sequence, to: file)
        var applied = layout.header
        applied.logGUID = .zero
        (layout.header, layout.headerSlot) = try HeaderUpdater.write(applied, currentSlot: layout.headerSlot, to: file)
        pendingLog = nil
        logReplay?.inMemory = false
        io = storage
        bat.read(from: storage)
        bitmapPages.removeAll()
        try observer?.didReplayLog(self)
    }

    /// Writes a pending log into the file now (what a writable close does), renewing
    /// FileWriteGuid first. Does nothing on an image with an empty log.
    func replayPendingLog() throws(VHDXError) {
        guard pendingLog != nil else { return }
        try openForWrites()
    }

    /// Runs the writable-open steps now even if nothing else is written: both headers are
    /// rewritten (restoring a damaged copy) and a pending log is replayed (`check --repair`).
    package func openForWrites() throws(VHDXError) {
        try requireWritable()
        try (storage as? WriteGate)?.open()
    }

    /// The file under the write gate, for what only a real file can say (allocated space).
    var fileStorage: FileStorage? { ((storage as? WriteGate)?.base ?? storage) as? FileStorage }

    /// The end of the last object the image references (header section, log, regions, blocks),
    /// rounded up to 1 MiB: space past it is unreferenced, so new blocks may reuse it. The same
    /// walk that validates a writable open (`WriteSafety`).
    func referencedEnd() throws(VHDXError) -> UInt64 {
        try WriteSafety.validate(layout: layout, io: io, fileSize: try io.size(), path: storage.name)
    }

    /// Reads bytes the image stores at `fileOffset` (payload found through the BAT), through
    /// the replay overlay when a pending log was applied in memory.
    package func readStored(into buffer: UnsafeMutableRawBufferPointer, at fileOffset: UInt64) throws(VHDXError) {
        try io.read(into: buffer, at: fileOffset)
    }

    /// The BAT entry of payload block `block`.
    package func payloadEntry(block: UInt64) throws(VHDXError) -> BATEntry {
        try bat.entry(geometry.payloadIndex(block: block))
    }

    /// The BAT entry of the sector bitmap of `chunk`.
    package func sectorBitmapEntry(chunk: UInt64) throws(VHDXError) -> BATEntry? {
        let i = geometry.sectorBitmapIndex(chunk: chunk)
        return i < bat.entryCount ? try bat.entry(i) : nil
    }

    /// Every BAT entry in index order, streamed a page at a time.
    package func forEachBATEntry(_ body: (UInt64, BATEntry) throws(VHDXError) -> Void) throws(VHDXError) {
        try bat.forEach(body)
    }

    /// The BAT's raw little-endian entries a page (1 MiB) at a time, with the index of the
    /// first: for scans of whole-disk maps that must not cost a call per entry.
    package func forEachBATPage(_ body: (UInt64, UnsafeRawBufferPointer) throws(VHDXError) -> Void) throws(VHDXError) {
        try bat.forEachPage(body)
    }
}
