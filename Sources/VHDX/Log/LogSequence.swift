import VHDXFormat

/// The active log sequence of [MS-VHDX] 2.3.3 (docs/vhdx-format.md §5.4): the newest valid, complete
/// run of entries whose head's Tail points inside it. `entries` starts at the tail entry.
package struct LogSequence: Sendable {
    package struct Located: Sendable {
        package var position: UInt64
        package var entry: LogEntry
    }

    package var entries: [Located]
    package var head: LogEntryHeader { entries.last!.entry.header }
    package var updateCount: Int { entries.reduce(0) { $0 + $1.entry.updates.count } }

    /// The largest single entry the engine will hold in memory while validating it.
    static let maxEntryBytes: UInt32 = 64 << 20

    /// Finds the active sequence for `header`'s LogGuid. Returns nil when the LogGuid is zero (the
    /// log is empty). Throws when the log is non-empty but holds no valid sequence, or when the
    /// file is shorter than the head's FlushedFileOffset: both mean the image cannot be trusted.
    package static func findActive(in storage: Storage, header: Header, fileSize: UInt64) throws(VHDXError) -> LogSequence? {
        guard !header.logGUID.isZero else { return nil }
        let logLength = UInt64(header.logLength)
        do { try header.validateLogLocation() } catch { throw .format(error, path: storage.name) }
        guard header.logOffset + logLength <= fileSize else {
            throw VHDXError(.corrupt, "the log [\(header.logOffset), \(header.logOffset + logLength)) runs past the end of the file (\(fileSize) bytes)",
                            path: storage.name, at: header.logOffset)
        }
        var view = LogView(storage: storage, logOffset: header.logOffset, logLength: logLength)
        var candidate: [Located] = []
        var curTail: UInt64 = 0
        var oldTail: UInt64 = 0
        var lastReason: FormatError?
        let maxSteps = logLength / 4096 * 2 + 2
        var steps: UInt64 = 0
        // A run starting inside a run already found invalid reaches the same head with fewer
        // entries, so it is invalid too: skipping those starts keeps the search linear.
        var deadStarts = Set<UInt64>()
        while steps < maxSteps {
            steps += 1
            if deadStarts.contains(curTail) {
                curTail = (curTail + 4096) % logLength
                if curTail <= oldTail { break }
                oldTail = curTail
                continue
            }
            var seq: [Located] = []
            var pos = curTail
            while seq.count < Int(logLength / 4096) {
                let fileOffset = header.logOffset + pos
                guard let e = try readEntry(&view, at: pos, fileOffset: fileOffset, header: header, reason: &lastReason) else { break }
                if let last = seq.last, e.header.sequenceNumber != last.entry.header.sequenceNumber &+ 1 { break }
                seq.append(Located(position: pos, entry: e))
                pos = (pos + UInt64(e.header.entryLength)) % logLength
            }
            var valid = false
            if let head = seq.last, let tailIndex = seq.firstIndex(where: { $0.position == UInt64(head.entry.header.tail) }) {
                valid = true
                if head.entry.header.sequenceNumber > (candidate.last?.entry.header.sequenceNumber ?? 0) {
                    candidate = Array(seq[tailIndex...])
                }
            }
            if !valid { for l in seq { deadStarts.insert(l.position) } }
            curTail = valid ? pos : (curTail + 4096) % logLength
            if curTail <= oldTail { break }
            oldTail = curTail
        }
        guard !candidate.isEmpty else {
            var why = "the header names log {\(header.logGUID)} but the log holds no valid sequence of its entries"
            if let lastReason { why += " (last rejection: \(lastReason))" }
            throw VHDXError(.corrupt, why, path: storage.name, at: header.logOffset)
        }
        let seq = LogSequence(entries: candidate)
        // Replay writes where the log says: refuse targets no valid file could have.
        let limit = ReplayOverlay.maxFileOffset
        guard seq.head.lastFileOffset <= limit else {
            throw VHDXError(.corrupt, "the log's LastFileOffset \(seq.head.lastFileOffset) is beyond any VHDX file", path: storage.name, at: header.logOffset)
        }
        for located in seq.entries {
            for u in located.entry.updates {
                let (start, length): (UInt64, UInt64)
                switch u {
                case let .data(o, _): (start, length) = (o, 4096)
                case let .zero(o, l): (start, length) = (o, l)
                }
                // The file identifier and headers are never logged (region tables at 192 KiB are).
                guard start <= limit, length <= limit - start, start >= Layout.regionTableOffsets[0] else {
                    throw VHDXError(.corrupt, "a log entry writes [\(start), +\(length)), where no logged structure can be", path: storage.name,
                                    at: header.logOffset + located.position)
                }
            }
        }
        guard fileSize >= seq.head.flushedFileOffset else {
            throw VHDXError(.corrupt, "the file is \(fileSize) bytes but the log says at least \(seq.head.flushedFileOffset) were stable: it was truncated",
                            path: storage.name, at: header.logOffset + seq.entries.last!.position)
        }
        return seq
    }

    private static func readEntry(_ view: inout LogView, at pos: UInt64, fileOffset: UInt64, header: Header,
                                  reason: inout FormatError?) throws(VHDXError) -> LogEntry? {
        let logLength = UInt64(header.logLength)
        let first = try view.read(at: pos, count: LogEntryHeader.encodedSize)
        var r = ByteReader(first, base: fileOffset, structure: "log entry")
        guard let h = try? LogEntryHeader(parsing: &r) else { return nil }
        do {
            try LogEntry.precheck(h, logGUID: header.logGUID, logLength: logLength, at: fileOffset)
        } catch {
            if h.logGUID == header.logGUID { reason = error }
            return nil
        }
        guard h.entryLength <= maxEntryBytes else {
            throw VHDXError(.tooLarge, "log entry of \(h.entryLength) bytes exceeds the \(maxEntryBytes)-byte limit for replay", path: view.storage.name, at: fileOffset)
        }
        let bytes = try view.read(at: pos, count: Int(h.entryLength))
        do {
            return try LogEntry.decodeValid(bytes, logGUID: header.logGUID, logLength: logLength, at: fileOffset)
        } catch {
            reason = error
            return nil
        }
    }
}
