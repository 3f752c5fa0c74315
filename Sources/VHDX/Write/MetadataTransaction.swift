import VHDXFormat

/// One change to the image's metadata: gathered by a writer, then committed by
/// `VHDXFile.commit` as one log entry (split only when larger than the log allows, see
/// `Journal`), applied, and the in-memory BAT and layout brought in step. Every writer goes
/// through it: write, zero, trim, compact, resize, the parent locator, regions, repair, and
/// the observer's pages.
///
/// An entry's updates are ordered: the observer's staged pages first (with the change's own
/// metadata they become durable together, vhdx-format.md §5.6), then `leadingPages`, sector
/// bitmap pages, BAT sectors, `trailingPages`. Bitmap pages go before BAT sectors, so that
/// even if the log splits the change, a BAT entry never names bits that are not yet set.
struct MetadataTransaction {
    /// Pages logged before the rest of the change (a resize's region tables).
    var leadingPages: [LogEntry.Update] = []
    /// Sector bitmap pages (4 KiB images keyed by file offset), logged in offset order.
    var bitmapPages: [UInt64: [UInt8]] = [:]
    /// New BAT entries (index, entry), in order: a later one for the same index wins.
    var batEntries: [(UInt64, BATEntry)] = []
    /// Sector bitmap blocks allocated by this change, by chunk (the BAT does not show them yet).
    var newBitmaps: [UInt64: MiBOffset] = [:]
    /// Entries a grown BAT starts to use: logged as empty wherever the region holds anything.
    var clearedBATEntries: Range<UInt64> = 0..<0
    /// The BAT region the entries go into when it is not the current one (a resize that moves
    /// the BAT; one of `layoutChanges` makes it current).
    var batRegionOffset: UInt64?
    /// Pages logged after the BAT sectors (metadata items, region tables, a new region's pages).
    var trailingPages: [LogEntry.Update] = []
    /// What the in-memory layout becomes once the entry is applied.
    var layoutChanges: [(inout ImageLayout) -> Void] = []

    init() {}

    /// A change of BAT entries only.
    init(batEntries: [(UInt64, BATEntry)]) { self.batEntries = batEntries }

    /// A change of whole pages only (region tables, metadata items).
    init(pages: [LogEntry.Update]) { trailingPages = pages }

    /// Nothing to log: committing it does nothing (the observer's staged pages wait for the
    /// next commit or `commitStagedPages`).
    var isEmpty: Bool {
        leadingPages.isEmpty && bitmapPages.isEmpty && batEntries.isEmpty && clearedBATEntries.isEmpty && trailingPages.isEmpty
    }
}

/// Proof that a transaction's entry is durable and applied: what the BAT cache asks for
/// before it changes (`BATTable.apply`), so only a commit can change it.
struct CommittedTransaction {
    fileprivate init() {}
}

extension VHDXFile {
    /// Logs `transaction` as one entry (with the observer's staged pages, first), applies it,
    /// then updates the BAT cache and the layout.
    func commit(_ transaction: MetadataTransaction) throws(VHDXError) {
        guard !transaction.isEmpty else { return }
        var body = transaction.leadingPages
        body += transaction.bitmapPages.keys.sorted().map { .data(fileOffset: $0, bytes: transaction.bitmapPages[$0]!) }
        body += try batSectorPages(transaction.batEntries, regionOffset: transaction.batRegionOffset ?? layout.batRegion.fileOffset,
                                   clearing: transaction.clearedBATEntries)
        body += transaction.trailingPages
        try logAndApply(session.takeStagedPages() + body)

        let done = CommittedTransaction()
        let oldBAT = (layout.batRegion.fileOffset, layout.batEntriesUsed)
        for change in transaction.layoutChanges { change(&layout) }
        if layout.batRegion.fileOffset != oldBAT.0 || layout.batEntriesUsed != oldBAT.1 {
            bat.apply(done, regionOffset: layout.batRegion.fileOffset, entryCount: layout.batEntriesUsed)
        } else {
            bat.apply(done, transaction.batEntries)
        }
    }

    /// Commits what the observer staged, in an entry of its own.
    func commitStagedPages() throws(VHDXError) {
        guard session.hasStagedPages else { return }
        try logAndApply(session.takeStagedPages())
    }

    /// 4 KiB BAT sector images with entries in `clearing` made empty where the region holds
    /// anything (entries a grown table starts to use must read as empty, whatever the region
    /// held), then `entries` applied: the clearing comes first, so a grown fixed disk's new
    /// blocks keep their entries over stale ones.
    private func batSectorPages(_ entries: [(UInt64, BATEntry)], regionOffset: UInt64, clearing: Range<UInt64>) throws(VHDXError) -> [LogEntry.Update] {
        var all: [(UInt64, BATEntry)] = []
        var i = clearing.lowerBound
        while i < clearing.upperBound {
            let n = min(clearing.upperBound - i, 128 * 1024)
            let raw = try storage.read(count: Int(n * 8), at: regionOffset + i * 8)
            if !raw.withUnsafeBytes({ isAllZero($0) }) {
                for k in 0..<n where BATEntry.load(from: raw, index: Int(k)) != .notPresent { all.append((i + k, .notPresent)) }
            }
            i += n
        }
        all += entries
        let perSector = UInt64(4096 / BATEntry.encodedSize)
        var sectors: [UInt64: [UInt8]] = [:]
        for (index, entry) in all {
            let sector = index / perSector
            if sectors[sector] == nil { sectors[sector] = try storage.read(count: 4096, at: regionOffset + sector * 4096) }
            entry.encode(into: &sectors[sector]!, index: Int(index % perSector))
        }
        return sectors.keys.sorted().map { .data(fileOffset: regionOffset + $0 * 4096, bytes: sectors[$0]!) }
    }
}
