import VHDX
import VHDXFormat

extension ChangeTracker {
    /// Seals the open epoch and returns its change ID, which names the disk's content now.
    /// The epoch's set becomes a history record (the oldest is dropped past the history
    /// limit), a new epoch opens empty, the coarse map is cleared. Durable when it returns.
    public func seal() throws(VHDXError) -> ChangeID {
        guard image.isWritable else { throw VHDXError(.readOnly, "sealing a change ID writes the tracking region: open the disk writable", path: image.path) }
        let before = SealUndo(header: header, current: current, currentCoarsened: currentCoarsened, coarse: coarse, window: window,
                              unpersisted: unpersisted, lastPersist: lastPersist, pendingReset: pendingReset)
        applyPendingReset()
        let epoch = header.currentEpoch
        let slot = freeSlot(excludingCurrent: true)
        let set = try stageSet(current.runs(), slot: slot)
        header.records.append(EpochRecord(epoch: epoch, sealTime: ChangeTracker.now(), virtualSize: header.trackedSize, slot: slot,
                                          runCount: set.count, checksum: set.checksum,
                                          flags: set.flags | (currentCoarsened ? StoredSet.Flag.coarsened : 0),
                                          tag: reservedTag ?? ChangeTracker.newTag()))
        reservedTag = nil
        if header.records.count > Int(header.geometry.historyLimit) {
            let dropped = header.records.count - Int(header.geometry.historyLimit)
            // The newest dropped epoch stays answerable as a "since" point: keep its tag.
            header.floorTag = header.records[dropped - 1].tag
            header.records.removeFirst(dropped)
        }
        header.currentEpoch = epoch + 1
        header.currentSlot = TrackingHeader.noSlot
        header.currentRunCount = 0
        header.currentChecksum = 0
        header.currentFlags = 0
        header.flags &= ~TrackingHeader.Flag.dirty
        header.expectedDataWriteGUID = image.header.dataWriteGUID
        header.pendingDataWriteGUID = .zero
        current = GranuleSet()
        currentCoarsened = false
        coarse = [UInt8](repeating: 0, count: 4096)
        coarseNeedsWrite = true
        window = 1
        unpersisted = false
        lastPersist = ChangeTracker.now()
        try stageHeader()
        try image.commitObserverPages([])
        let sealed = id(epoch: epoch)
        sealUndo = (before, header, sealed)
        return sealed
    }

    /// The ID the next `seal()` of this handle returns, if nothing else seals first: an export
    /// writes it into its output and seals only once the output is complete, so a failed export
    /// seals nothing (and costs no history).
    package func reserveNextID() -> ChangeID {
        let tag = reservedTag ?? ChangeTracker.newTag()
        reservedTag = tag
        let generation = pendingReset == nil ? header.generation : header.generation &+ 1
        return ChangeID(virtualDiskID: pendingReset == nil ? header.virtualDiskID : image.layout.virtualDiskID,
                        trackingID: header.trackingID, generation: generation, epoch: header.currentEpoch, tag: tag)
    }

    /// Takes back the seal that returned `id` when nothing happened since (no change, no other
    /// seal, no persist): the state before it is committed again, so the ID is never answered
    /// and no history record was spent. For an export whose output could not be published
    /// after the seal. The tag is not reused: a leaked `id` stays unknown ("another copy").
    package func undoSeal(_ id: ChangeID) throws(VHDXError) {
        guard let (before, after, sealed) = sealUndo, sealed == id, header == after, current.isEmpty, !unpersisted else {
            throw VHDXError(.invalidArgument, "\(id) cannot be taken back: it is not this handle's last seal, or the disk changed since", path: image.path)
        }
        sealUndo = nil
        header = before.header
        current = before.current
        currentCoarsened = before.currentCoarsened
        coarse = before.coarse
        window = before.window
        unpersisted = before.unpersisted
        lastPersist = before.lastPersist
        pendingReset = before.pendingReset
        coarseNeedsWrite = true
        try stageHeader()
        try image.commitObserverPages([])
    }

    /// The tracker's state before a seal, to take it back (`undoSeal`).
    struct SealUndo {
        var header: TrackingHeader
        var current: GranuleSet
        var currentCoarsened: Bool
        var coarse: [UInt8]
        var window: UInt64
        var unpersisted: Bool
        var lastPersist: UInt64
        var pendingReset: (code: TrackingHeader.ResetCode, text: String)?
    }

    func id(epoch: UInt64) -> ChangeID {
        ChangeID(virtualDiskID: header.virtualDiskID, trackingID: header.trackingID, generation: header.generation, epoch: epoch,
                 tag: header.tag(ofEpoch: epoch) ?? 0)
    }

    /// A seal's tag: random and never 0 (0 marks IDs sealed before tags existed). 64 random bits,
    /// so two copies of a disk sealing the same epoch agree by chance once in 2^64.
    static func newTag() -> UInt64 {
        var g = SystemRandomNumberGenerator()
        return UInt64.random(in: 1...UInt64.max, using: &g)
    }

    /// The newest sealed ID, if any since tracking (re)started.
    public var latestID: ChangeID? {
        guard pendingReset == nil, let e = header.latestSealedEpoch else { return nil }
        return id(epoch: e)
    }

    /// Every ID `changes(since:)` can still answer, oldest first.
    public var retainedIDs: [ChangeID] {
        guard pendingReset == nil, let first = header.oldestAnswerableEpoch, let last = header.latestSealedEpoch else { return [] }
        return (first...last).map { id(epoch: $0) }
    }
}
