import VHDXFormat

/// Session state of the metadata log of a writable image.
///
/// Every metadata change (BAT, sector bitmaps, metadata region, region tables) is committed as
/// one log entry, in this order ([MS-VHDX] 2.3, vhdx-format.md §5.6):
///   1. flush: payload written so far, and the previous entry's in-place writes, become durable;
///   2. write the entry (its Tail is itself: everything older is applied and durable), flush;
///   3. on the session's first entry only, write the headers with the new LogGuid (after the
///      entry, so a crash in between leaves LogGuid zero and the unapplied entry ignored);
///   4. write the updates to their places (made durable by the next commit's or close's flush).
/// A crash anywhere leaves either the old metadata or an entry that the next open replays.
/// Close flushes and clears LogGuid, leaving an empty log.
///
/// Within one LogGuid the ring is written once, front to back, and never wrapped. Replay needs
/// the newest complete entry intact until the next one is durable: if an entry were torn over
/// it, the headers would still name the LogGuid while the log held either no valid entry (the
/// image would not open) or only an older one (replay would put back BAT sectors that newer
/// in-place writes had changed). An entry that does not fit before the end of the ring
/// therefore starts a new log instead: everything is already flushed and applied (step 1), so
/// the headers are written with LogGuid zero, and the entry goes to offset 0 as the first of a
/// new LogGuid (steps 2-3). A crash in between leaves LogGuid zero and nothing to replay; the
/// old LogGuid's entries that the new ones overwrite are ignored by replay whatever their state.
///
/// The session's log state lives here and changes only in this file (the log protocol below);
/// everything else reads it.
final class Journal {
    fileprivate(set) var logGUID: GUID?
    fileprivate(set) var sequence: UInt64 = 0
    fileprivate(set) var position: UInt64 = 0
    /// The durable entry's updates while they are being written in place; a failure there
    /// leaves them here, and they are written again before anything else (replay's job, done
    /// by the session itself) so the log can still be cleared.
    fileprivate(set) var unapplied: [LogEntry.Update] = []
    /// Set when a change failed part-way (VHDXFile+Failure): the session takes no more changes.
    fileprivate(set) var failure: VHDXError?

    /// A fresh LogGuid's state: nothing logged under it yet; sequence numbers keep rising.
    fileprivate func restart(keepingSequence: Bool) {
        logGUID = nil
        if !keepingSequence { sequence = 0 }
        position = 0
        unapplied = []
    }
}

extension VHDXFile {
    /// Commits 4 KiB-aligned metadata updates through the log, then applies them. Only a
    /// `MetadataTransaction` calls this (`VHDXFile.commit`): it gathers a change's pages.
    func logAndApply(_ updates: [LogEntry.Update]) throws(VHDXError) {
        guard !updates.isEmpty else { return }
        let logLength = UInt64(layout.header.logLength)
        guard logLength > 0 else { throw VHDXError(.unsupported, "the image has no log, so its metadata cannot be changed safely", path: storage.name) }
        for part in Journal.entryRanges(updateCount: updates.count, logLength: logLength) {
            try commitEntry(Array(updates[part]), logLength: logLength)
        }
    }

    private func commitEntry(_ updates: [LogEntry.Update], logLength: UInt64) throws(VHDXError) {
        if let failure = journal.failure { throw VHDXError.sessionEnded(by: failure, path: storage.name) }
        try finishApplying()
        try storage.synchronize()
        let sequence = journal.sequence + 1
        var position = journal.position
        // Size the entry first, then place it where it fits without wrapping; one that does not
        // fit starts a new LogGuid rather than overwrite entries of this one (see `Journal`).
        let probe = LogEntry.encode(updates: updates, sequenceNumber: sequence, tail: 0, logGUID: journal.logGUID ?? .zero,
                                    flushedFileOffset: 0, lastFileOffset: 0)
        if position + UInt64(probe.count) > logLength {
            if journal.logGUID != nil { try retireLog() }
            position = 0
        }
        let guid = journal.logGUID ?? .random()
        let size = try storage.size()
        let entry = LogEntry.encode(updates: updates, sequenceNumber: sequence, tail: UInt32(position), logGUID: guid,
                                    flushedFileOffset: size / Layout.MiB * Layout.MiB,
                                    lastFileOffset: size.roundedUp(to: Layout.MiB) ?? size)
        try storage.write(entry, at: layout.header.logOffset + position)
        try storage.synchronize()
        if journal.logGUID == nil {
            var h = layout.header
            h.logGUID = guid
            do { try writeHeaders(h) } catch {
                // Either header may now name the LogGuid: adopt it so a clean-up clears it,
                // and end the session so no entry follows that assumes the headers name it.
                journal.logGUID = guid
                journal.failure = error
                throw error
            }
            journal.logGUID = guid
        }
        journal.sequence = sequence
        // Not modulo: an entry ending exactly at the end of the ring leaves no room, and the
        // next one must start a new LogGuid rather than go to offset 0 over this one's log.
        journal.position = position + UInt64(entry.count)
        journal.unapplied = updates
        try finishApplying()
    }

    /// Writes the durable entry's updates to their places (again, after a failure).
    func finishApplying() throws(VHDXError) {
        // Sector-bitmap pages among the updates would be stale in the read cache.
        if !journal.unapplied.isEmpty { bitmapPages.removeAll() }
        for u in journal.unapplied {
            switch u {
            case let .data(offset, bytes): try storage.write(bytes, at: offset)
            case .zero: preconditionFailure("the engine logs only data updates")
            }
        }
        journal.unapplied = []
    }

    /// Writes both headers (the procedure of [MS-VHDX] 2.2.2.1) and adopts the result.
    /// The write gate must be open: a header taken before it opened would put back the old
    /// FileWriteGuid (and LogGuid) over what opening it wrote.
    func writeHeaders(_ h: Header) throws(VHDXError) {
        if let gate = storage as? WriteGate, !gate.opened {
            throw VHDXError(.invalidArgument, "internal: headers written before the first change opened the image for writing", path: storage.name)
        }
        let (current, slot) = try HeaderUpdater.write(h, currentSlot: layout.headerSlot, to: storage)
        layout.header = current
        layout.headerSlot = slot
    }

    /// Ends the current LogGuid once everything it logged is flushed and applied: headers with
    /// LogGuid zero. The next entry starts a new one at offset 0; sequence numbers keep rising.
    private func retireLog() throws(VHDXError) {
        var h = layout.header
        h.logGUID = .zero
        try writeHeaders(h)
        journal.restart(keepingSequence: true)
    }

    /// Ends the session after `error` (VHDXFile+Failure): no more changes are taken, and the
    /// log is cleaned up as far as the device lets it.
    func endSession(after error: VHDXError) {
        journal.failure = error
        try? closeJournal()
    }

    /// Flushes and empties the log (LogGuid zero), so a clean close leaves nothing to replay.
    func closeJournal() throws(VHDXError) {
        try finishApplying()
        try storage.synchronize()
        guard journal.logGUID != nil else { return }
        var h = layout.header
        h.logGUID = .zero
        try writeHeaders(h)
        journal.restart(keepingSequence: false)
    }
}

extension Journal {
    /// The largest entry the engine writes into a log of `logLength` bytes: half the ring, so
    /// a ring holds at least two entries before a new LogGuid must be started, and never more
    /// than replay accepts (`LogSequence.maxEntryBytes`).
    static func maxEntryBytes(logLength: UInt64) -> UInt64 {
        min(logLength / 2 / 4096 * 4096, UInt64(LogSequence.maxEntryBytes))
    }

    /// The most 4 KiB data updates one entry of at most `maxEntryBytes` can carry: one data
    /// sector each plus the descriptor sectors (64-byte header and 32-byte descriptors, 128 a
    /// sector: `ceil((n + 2) / 128)`, vhdx-format.md §5.2), which a large log makes more than one.
    static func maxUpdatesPerEntry(logLength: UInt64) -> Int {
        let sectors = Int(maxEntryBytes(logLength: logLength) / 4096)
        var n = sectors - 1
        while n > 1 && n + (n + 2 + 127) / 128 > sectors { n -= 1 }
        return max(1, n)
    }

    /// How `updateCount` updates are split into entries, in order.
    static func entryRanges(updateCount: Int, logLength: UInt64) -> [Range<Int>] {
        let per = maxUpdatesPerEntry(logLength: logLength)
        return stride(from: 0, to: updateCount, by: per).map { $0..<min(updateCount, $0 + per) }
    }
}
