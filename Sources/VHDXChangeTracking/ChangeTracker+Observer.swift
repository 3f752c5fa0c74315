import VHDX
import VHDXFormat

/// The engine's observation point: every change passes here before it is applied.
extension ChangeTracker {
    /// Records the session's DataWriteGuid (and the dirty flag) before the engine writes it,
    /// so the next open can tell this session from an outside writer. A reset found at open
    /// is written first.
    public func sessionWillBegin(_ image: VHDXFile, proposed: GUID?) throws(VHDXError) -> GUID {
        applyPendingReset()
        let g = proposed ?? .random()
        header.pendingDataWriteGUID = g
        header.flags |= TrackingHeader.Flag.dirty
        try stageHeader()
        return g
    }

    /// Marks the change in the open epoch: fine granules in memory, and coarse regions not yet
    /// marked through the log before the engine writes any data (write-ahead).
    public func willChange(_ image: VHDXFile, _ kind: ChangeKind, _ range: Range<UInt64>, newSize: UInt64?) throws(VHDXError) {
        if let newSize {
            try resize(from: header.trackedSize, to: newSize)
            return
        }
        // A parent accepted with a mismatch: every byte may differ, none is known to. Answers
        // that include this epoch cover the whole range but are not "exactly what was written".
        if kind == .reparent { currentCoarsened = true }
        try mark(range)
    }

    /// A flush persists the set only every `persistInterval` seconds: in between the dirty flag
    /// stays set, so a crash folds the coarse map in (larger, never smaller) while frequent
    /// flushes (a guest's fsyncs) cost no extra log commits.
    public func willFlush(_ image: VHDXFile) throws(VHDXError) {
        guard ChangeTracker.now() >= lastPersist + ChangeTracker.persistInterval else { return }
        try persistCurrent()
    }
    public func willClose(_ image: VHDXFile) throws(VHDXError) { try persistCurrent() }
    // Log replay needs no hook here: it writes what tracked sessions logged (their marks
    // included), and the tracker read its pages through the replayed view already.

    // MARK: -

    func mark(_ range: Range<UInt64>) throws(VHDXError) {
        guard !range.isEmpty else { return }
        let g = header.geometry.granule
        current.insert(range.lowerBound / g..<(range.upperBound + g - 1) / g)
        unpersisted = true
        try markCoarse(range)
    }

    /// Sets the coarse bits of `range`. A bit found clear is set together with the rest of an
    /// aligned window around it, and the window grows 16-fold each time within an epoch: a
    /// scattered workload needs about log16(32768) ≈ 4 extra log commits per epoch, not one per region,
    /// while a localized one keeps its marks (and so the over-report after a crash) close to
    /// what it wrote.
    func markCoarse(_ range: Range<UInt64>) throws(VHDXError) {
        if skipsCoarseMarks { return }
        let unit = header.coarseUnit
        let first = range.lowerBound / unit, last = (range.upperBound - 1) / unit
        var changed = false
        var b = first
        while b <= last {
            if !isCoarseSet(b) {
                let w = min(window, TrackingGeometry.coarseBits)
                let start = b / w * w
                for k in start..<min(start + w, TrackingGeometry.coarseBits) { setCoarse(k) }
                changed = true
            }
            b += 1
        }
        if changed {
            window = min(window * 16, TrackingGeometry.coarseBits)
            try image.stageObserverPages([(region.fileOffset + TrackingGeometry.coarseOffset, coarse)])
        }
        if !header.isDirty {
            header.flags |= TrackingHeader.Flag.dirty
            try stageHeader()
        }
    }

    func isCoarseSet(_ bit: UInt64) -> Bool { coarse[Int(bit / 8)] >> UInt8(bit % 8) & 1 == 1 }
    func setCoarse(_ bit: UInt64) { coarse[Int(bit / 8)] |= 1 << UInt8(bit % 8) }

    /// Growing marks the new range changed; shrinking drops granules past the new end (answers
    /// are clipped to the disk's size anyway). A size the coarse map cannot cover doubles its
    /// unit, folding bit pairs, so every set bit still covers what it covered.
    func resize(from old: UInt64, to new: UInt64) throws(VHDXError) {
        while header.coarseUnit * TrackingGeometry.coarseBits < new {
            var folded = [UInt8](repeating: 0, count: coarse.count)
            for bit in 0..<TrackingGeometry.coarseBits where isCoarseSet(bit) {
                let n = bit / 2
                folded[Int(n / 8)] |= 1 << UInt8(n % 8)
            }
            coarse = folded
            header.coarseUnit *= 2
            try image.stageObserverPages([(region.fileOffset + TrackingGeometry.coarseOffset, coarse)])
        }
        header.trackedSize = new
        if new > old {
            try mark(old..<new)
        } else {
            current.clip(below: granuleCount(new))
            unpersisted = true
        }
        try stageHeader()
    }

    /// Writes the open epoch's set to a free slot, then the header naming it (staged last, so
    /// it lands last if the log splits the update), clearing the dirty flag: the set now holds
    /// everything, and the session's DataWriteGuid becomes the expected one.
    func persistCurrent() throws(VHDXError) {
        guard unpersisted || pendingReset != nil || header.isDirty || !header.pendingDataWriteGUID.isZero else { return }
        applyPendingReset()
        let runs = current.runs()
        if runs.isEmpty {
            header.currentSlot = TrackingHeader.noSlot
            header.currentRunCount = 0
            header.currentChecksum = 0
            header.currentFlags = 0
        } else {
            let slot = freeSlot(excludingCurrent: true)
            let set = try stageSet(runs, slot: slot)
            header.currentSlot = slot
            header.currentRunCount = set.count
            header.currentChecksum = set.checksum
            // Not exact stays not exact across a close (a folded coarse map, a reparent).
            header.currentFlags = set.flags | (currentCoarsened ? StoredSet.Flag.coarsened : 0)
        }
        header.flags &= ~TrackingHeader.Flag.dirty
        header.expectedDataWriteGUID = image.header.dataWriteGUID
        header.pendingDataWriteGUID = .zero
        try stageHeader()
        unpersisted = false
        lastPersist = ChangeTracker.now()
    }

    /// The lowest slot no record uses (nor the current set, unless `excludingCurrent` is false).
    func freeSlot(excludingCurrent: Bool) -> UInt32 {
        var used = Set(header.records.map(\.slot))
        if excludingCurrent, header.currentSlot != TrackingHeader.noSlot { used.insert(header.currentSlot) }
        return (0..<header.geometry.slotCount).first { !used.contains($0) }!
    }

    /// Encodes a set for `slot` (run list or bitmap, coarsened only if neither fits) and stages
    /// its pages.
    func stageSet(_ runs: [GranuleRun], slot: UInt32) throws(VHDXError) -> StoredSet.Encoded {
        let set = StoredSet.encode(runs, slotBytes: header.geometry.slotBytes)
        let base = region.fileOffset + header.geometry.slotOffset(slot)
        var pages: [(fileOffset: UInt64, bytes: [UInt8])] = []
        var i = 0
        while i < set.bytes.count {
            pages.append((base + UInt64(i), Array(set.bytes[i..<i + 4096])))
            i += 4096
        }
        try image.stageObserverPages(pages)
        return set
    }

    /// Stages the header page (after the coarse map, if a reset cleared it).
    func stageHeader() throws(VHDXError) {
        if coarseNeedsWrite {
            try image.stageObserverPages([(region.fileOffset + TrackingGeometry.coarseOffset, coarse)])
            coarseNeedsWrite = false
        }
        try image.stageObserverPages([(region.fileOffset, header.encode())])
    }

    /// Starts tracking over after a reset: a new generation, no history, an empty open epoch,
    /// the disk as it is now as the baseline. Every earlier ID now answers "tracking reset".
    func applyPendingReset() {
        guard let (code, text) = pendingReset else { return }
        pendingReset = nil
        header.generation &+= 1
        header.generationStartEpoch = header.currentEpoch
        header.records = []
        header.floorTag = 0
        header.currentSlot = TrackingHeader.noSlot
        header.currentRunCount = 0
        header.currentChecksum = 0
        header.currentFlags = 0
        currentCoarsened = false
        header.resetCode = code
        header.resetText = text
        header.resetTime = ChangeTracker.now()
        header.expectedDataWriteGUID = image.header.dataWriteGUID
        header.pendingDataWriteGUID = .zero
        header.trackedSize = image.virtualSize
        header.virtualDiskID = image.layout.virtualDiskID
        header.coarseUnit = max(header.coarseUnit, header.geometry.coarseUnit(virtualSize: image.virtualSize))
        header.flags &= ~TrackingHeader.Flag.dirty
        current = GranuleSet()
        coarse = [UInt8](repeating: 0, count: 4096)
        coarseNeedsWrite = true
        window = 1
        unpersisted = true
    }
}
