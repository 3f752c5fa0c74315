import VHDXFormat

/// On-demand access to the BAT through a small page cache, so memory stays bounded whatever the
/// disk size (a 64 TiB disk with 1 MiB blocks has a 512 MiB BAT).
///
/// Reading code only reads it: the cache changes with the file only through `apply`, which
/// takes the proof of a committed `MetadataTransaction`.
final class BATTable {
    /// Swapped from a replay overlay to the file once a writable open replays its log there.
    private(set) var storage: Storage
    private(set) var regionOffset: UInt64
    private(set) var entryCount: UInt64
    static let pageEntries: UInt64 = 128 * 1024  // 1 MiB of entries
    static let maxPages = 16
    private var pages: [UInt64: [UInt8]] = [:]
    private var order: [UInt64] = []

    init(storage: Storage, regionOffset: UInt64, entryCount: UInt64) {
        self.storage = storage
        self.regionOffset = regionOffset
        self.entryCount = entryCount
    }

    func entry(_ index: UInt64) throws(VHDXError) -> BATEntry {
        precondition(index < entryCount, "BAT index out of range")
        let page = index / BATTable.pageEntries
        let bytes = try load(page)
        return BATEntry.load(from: bytes, index: Int(index % BATTable.pageEntries))!
    }

    /// Calls `body` with every entry in index order, one page at a time, without filling the cache.
    func forEach(_ body: (UInt64, BATEntry) throws(VHDXError) -> Void) throws(VHDXError) {
        try forEachPage { (first, raw) throws(VHDXError) in
            for k in 0..<raw.count / 8 {
                try body(first + UInt64(k), BATEntry.load(from: raw, index: k))
            }
        }
    }

    /// The raw little-endian entries a page (1 MiB) at a time, with the index of the first: the
    /// hot loops of info and check scan these directly.
    func forEachPage(_ body: (UInt64, UnsafeRawBufferPointer) throws(VHDXError) -> Void) throws(VHDXError) {
        var page: UInt64 = 0
        while page * BATTable.pageEntries < entryCount {
            let bytes: [UInt8]
            if let cached = pages[page] { bytes = cached } else { bytes = try read(page) }
            try typed { try bytes.withUnsafeBytes { raw in try body(page * BATTable.pageEntries, raw) } }
            page += 1
        }
    }

    /// Keeps cached pages in step with entries a committed transaction just wrote to the file.
    func apply(_ committed: CommittedTransaction, _ entries: [(UInt64, BATEntry)]) {
        for (index, entry) in entries {
            let page = index / BATTable.pageEntries
            guard pages[page] != nil else { continue }
            entry.encode(into: &pages[page]!, index: Int(index % BATTable.pageEntries))
        }
    }

    /// Follows a committed transaction that moved or resized the table: nothing cached survives.
    func apply(_ committed: CommittedTransaction, regionOffset: UInt64, entryCount: UInt64) {
        self.regionOffset = regionOffset
        self.entryCount = entryCount
        invalidate()
    }

    /// Reads from `storage` from now on (the file, once a writable open replayed its log into
    /// it: the same bytes the overlay showed, so the cache stays valid).
    func read(from storage: Storage) {
        self.storage = storage
    }

    private func invalidate() {
        pages.removeAll()
        order.removeAll()
    }

    private func load(_ page: UInt64) throws(VHDXError) -> [UInt8] {
        if let p = pages[page] { return p }
        let bytes = try read(page)
        if order.count >= BATTable.maxPages { pages[order.removeFirst()] = nil }
        pages[page] = bytes
        order.append(page)
        return bytes
    }

    private func read(_ page: UInt64) throws(VHDXError) -> [UInt8] {
        let first = page * BATTable.pageEntries
        let n = min(BATTable.pageEntries, entryCount - first)
        return try storage.read(count: Int(n * 8), at: regionOffset + first * 8)
    }
}
