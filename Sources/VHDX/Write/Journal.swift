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
struct Journal {
    var logGUID: GUID?
    var sequence: UInt64 = 0
    var position: UInt64 = 0
}

extension VHDXFile {
    /// Commits 4 KiB-aligned metadata updates through the log, then applies them.
    func commitMetadata(_ updates: [LogEntry.Update]) throws(VHDXError) {
        guard !updates.isEmpty else { return }
        let logLength = UInt64(layout.header.logLength)
        guard logLength > 0 else { throw VHDXError(.unsupported, "the image has no log, so its metadata cannot be changed safely", path: storage.name) }
        // Split so that one entry never needs more than half the ring.
        let perEntry = max(1, Int(logLength / 2 / 4096) - 2)
        var start = 0
        while start < updates.count {
            let part = Array(updates[start..<min(updates.count, start + perEntry)])
            try commitEntry(part, logLength: logLength)
            start += perEntry
        }
    }

    private func commitEntry(_ updates: [LogEntry.Update], logLength: UInt64) throws(VHDXError) {
        try storage.synchronize()
        let guid = journal.logGUID ?? .random()
        let size = try storage.size()
        let sequence = journal.sequence + 1
        var position = journal.position
        // Size the entry first, then place it where it fits without wrapping.
        let probe = LogEntry.encode(updates: updates, sequenceNumber: sequence, tail: 0, logGUID: guid,
                                    flushedFileOffset: 0, lastFileOffset: 0)
        if position + UInt64(probe.count) > logLength { position = 0 }
        let entry = LogEntry.encode(updates: updates, sequenceNumber: sequence, tail: UInt32(position), logGUID: guid,
                                    flushedFileOffset: size / Layout.MiB * Layout.MiB,
                                    lastFileOffset: size.roundedUp(to: Layout.MiB) ?? size)
        try storage.write(entry, at: layout.header.logOffset + position)
        try storage.synchronize()
        if journal.logGUID == nil {
            var h = layout.header
            h.logGUID = guid
            try writeHeaders(h)
            journal.logGUID = guid
        }
        journal.sequence = sequence
        journal.position = (position + UInt64(entry.count)) % logLength
        for u in updates {
            switch u {
            case let .data(offset, bytes): try storage.write(bytes, at: offset)
            case .zero: preconditionFailure("the engine logs only data updates")
            }
        }
    }

    /// Writes both headers (the procedure of [MS-VHDX] 2.2.2.1) and adopts the result.
    func writeHeaders(_ h: Header) throws(VHDXError) {
        let (current, slot) = try HeaderUpdater.write(h, currentSlot: layout.headerSlot, to: storage)
        layout.header = current
        layout.headerSlot = slot
    }

    /// Flushes and empties the log (LogGuid zero), so a clean close leaves nothing to replay.
    func closeJournal() throws(VHDXError) {
        try storage.synchronize()
        guard journal.logGUID != nil else { return }
        var h = layout.header
        h.logGUID = .zero
        try writeHeaders(h)
        journal = Journal()
    }
}
