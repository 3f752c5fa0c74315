import VHDXFormat

/// Commits metadata updates crash-safely through the log ([MS-VHDX] 2.3, vhdx-format.md §5.6):
/// new LogGuid in the headers, the entry written and flushed, the updates written to their
/// places and flushed, then the log marked empty again. A crash at any point leaves either the
/// old state or an entry that the next open replays to the new one.
struct LogWriter {
    let storage: Storage

    /// Returns the header now current and its slot.
    func commit(_ updates: [LogEntry.Update], header: Header, slot: Int) throws(VHDXError) -> (Header, Int) {
        guard header.logLength > 0 else {
            throw VHDXError(.corrupt, "the image has no log, so metadata cannot be updated safely", path: storage.name)
        }
        var h = header
        h.logGUID = .random()
        var (current, currentSlot) = try HeaderUpdater.write(h, currentSlot: slot, to: storage)
        let size = try storage.size()
        let entry = LogEntry.encode(updates: updates, sequenceNumber: 1, tail: 0, logGUID: current.logGUID,
                                    flushedFileOffset: size / Layout.MiB * Layout.MiB,
                                    lastFileOffset: size.roundedUp(to: Layout.MiB) ?? size)
        guard UInt64(entry.count) <= UInt64(current.logLength) else {
            throw VHDXError(.tooLarge, "a log entry of \(entry.count) bytes does not fit the \(current.logLength)-byte log", path: storage.name)
        }
        try storage.write(entry, at: current.logOffset)
        try storage.synchronize()
        let sequence = LogSequence(entries: [.init(position: 0, entry: LogEntry(header: LogEntryHeader(
            entryLength: UInt32(entry.count), tail: 0, sequenceNumber: 1, descriptorCount: UInt32(updates.count),
            logGUID: current.logGUID, flushedFileOffset: 0, lastFileOffset: 0), updates: updates))])
        try LogReplay.apply(sequence, to: storage)
        current.logGUID = .zero
        (current, currentSlot) = try HeaderUpdater.write(current, currentSlot: currentSlot, to: storage)
        return (current, currentSlot)
    }
}

extension LogEntry.Update {
    /// Splits a 4 KiB-aligned byte image into 4 KiB data updates.
    static func sectors(of bytes: [UInt8], at fileOffset: UInt64) -> [LogEntry.Update] {
        stride(from: 0, to: bytes.count, by: 4096).map {
            .data(fileOffset: fileOffset + UInt64($0), bytes: Array(bytes[$0..<min($0 + 4096, bytes.count)]))
        }
    }
}
