import VHDXFormat

/// On-demand access to the BAT through a small page cache, so memory stays bounded whatever the
/// disk size (a 64 TiB disk with 1 MiB blocks has a 512 MiB BAT).
final class BATTable {
    /// Swapped from a replay overlay to the file once a writable open replays its log there.
    var storage: Storage
    let regionOffset: UInt64
    let entryCount: UInt64
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
        let at = Int(index % BATTable.pageEntries) * 8
        return BATEntry(raw: loadUInt64LE(bytes, at: at)!)
    }

    /// Calls `body` with every entry in index order, one page at a time, without filling the cache.
    func forEach(_ body: (UInt64, BATEntry) throws(VHDXError) -> Void) throws(VHDXError) {
        try forEachPage { (first, raw) throws(VHDXError) in
            for k in 0..<raw.count / 8 {
                try body(first + UInt64(k), BATEntry(raw: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: k * 8, as: UInt64.self))))
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

    /// Keeps a cached page in step with an entry just written to the file.
    func store(_ index: UInt64, _ entry: BATEntry) {
        let page = index / BATTable.pageEntries
        guard pages[page] != nil else { return }
        let at = Int(index % BATTable.pageEntries) * 8
        for k in 0..<8 { pages[page]![at + k] = UInt8(truncatingIfNeeded: entry.raw >> (8 * UInt64(k))) }
    }

    func invalidate() {
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
