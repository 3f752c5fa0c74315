import VHDXFormat

/// The write path's state of one open image, owned here so that reading code cannot change
/// it by accident: the metadata log's session (`Journal`, which owns its own state), where
/// the next block goes, the observer's staged pages, and whether this session renewed
/// DataWriteGuid. Everything is changed only by the operations in this file (and the log
/// protocol in Journal.swift); the rest of the engine reads it. The in-memory BAT changes
/// only through a committed `MetadataTransaction` (`BATTable.apply`).
///
/// A read-only open has one too, never used: it keeps the handle's fields non-optional.
final class WriteSession {
    let journal = Journal()
    /// Where the next block goes: past every object the image references (1 MiB-aligned).
    fileprivate(set) var nextFreeOffset: UInt64
    /// Whether this session's first user-visible change renewed DataWriteGuid already.
    fileprivate(set) var dataWriteGUIDRenewed = false
    /// Observer pages (4 KiB, by file offset) waiting to ride with the next metadata commit.
    fileprivate var stagedPages: [(fileOffset: UInt64, bytes: [UInt8])] = []

    init(nextFreeOffset: UInt64) { self.nextFreeOffset = nextFreeOffset }

    var hasStagedPages: Bool { !stagedPages.isEmpty }

    /// An open log or staged pages: what a close still has to finish.
    var hasUnfinishedWork: Bool { journal.logGUID != nil || !stagedPages.isEmpty }

    /// Queues a page (validated by the caller); a page staged again moves to the end.
    func stage(_ page: (fileOffset: UInt64, bytes: [UInt8])) {
        stagedPages.removeAll { $0.fileOffset == page.fileOffset }
        stagedPages.append(page)
    }

    /// Drops staged pages inside [range) (a region going away), or all of them.
    func dropStagedPages(in range: Range<UInt64>? = nil) {
        guard let range else { stagedPages = []; return }
        stagedPages.removeAll { range.contains($0.fileOffset) }
    }

    /// The staged pages as log updates, in the order staged, emptying the queue: only a commit
    /// (MetadataTransaction.swift) takes them, to log them.
    func takeStagedPages() -> [LogEntry.Update] {
        guard !stagedPages.isEmpty else { return [] }
        let updates: [LogEntry.Update] = stagedPages.map { .data(fileOffset: $0.fileOffset, bytes: $0.bytes) }
        stagedPages = []
        return updates
    }

    func markDataWriteGUIDRenewed() { dataWriteGUIDRenewed = true }

    /// Moves the free-space cursor to `end` (compact, once the file is cut there).
    func resetFreeSpace(to end: UInt64) { nextFreeOffset = end }

    /// Takes `length` bytes at the cursor without touching the file (the caller writes all of it).
    func reserve(_ length: UInt64) -> UInt64 {
        let offset = nextFreeOffset
        nextFreeOffset += length
        return offset
    }
}

extension VHDXFile {
    /// `length` bytes (a multiple of 1 MiB) of 1 MiB-aligned space at the end of the file that
    /// read as zeros: space past everything referenced may hold stale bytes of an allocation
    /// a crash cut short, so it is cleared first.
    func allocate(_ length: UInt64) throws(VHDXError) -> MiBOffset {
        guard let aligned = MiBOffset(bytes: session.nextFreeOffset) else {
            throw VHDXError(.corrupt, "internal: the next free offset \(session.nextFreeOffset) is not on a 1 MiB boundary; nothing was written", path: storage.name)
        }
        let offset = aligned.bytes
        let end = offset + length
        _ = session.reserve(length)
        bitmapPages.removeAll()  // the space is cleared below; no cached page may outlive that
        let size = try storage.size()
        if offset < size { try storage.discard(offset: offset, length: min(size, end) - offset) }
        if size < end { try storage.resize(to: end) }
        return aligned
    }
}
