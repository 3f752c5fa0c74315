import VHDX
import VHDXFormat

extension ChangeTracker {
    /// Seals the open epoch and returns its change ID, which names the disk's content now.
    /// The epoch's set becomes a history record (the oldest is dropped past the history
    /// limit), a new epoch opens empty, the coarse map is cleared. Durable when it returns.
    public func seal() throws(VHDXError) -> ChangeID {
        guard image.isWritable else { throw VHDXError(.readOnly, "sealing a change ID writes the tracking region: open the disk writable", path: image.path) }
        applyPendingReset()
        let epoch = header.currentEpoch
        let slot = freeSlot(excludingCurrent: true)
        let set = try stageSet(current.runs(), slot: slot)
        header.records.append(EpochRecord(epoch: epoch, sealTime: ChangeTracker.now(), virtualSize: header.trackedSize, slot: slot,
                                          runCount: set.count, checksum: set.checksum,
                                          flags: set.flags | (currentCoarsened ? StoredSet.Flag.coarsened : 0)))
        if header.records.count > Int(header.geometry.historyLimit) {
            header.records.removeFirst(header.records.count - Int(header.geometry.historyLimit))
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
        return id(epoch: epoch)
    }

    func id(epoch: UInt64) -> ChangeID {
        ChangeID(virtualDiskID: header.virtualDiskID, trackingID: header.trackingID, generation: header.generation, epoch: epoch)
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
