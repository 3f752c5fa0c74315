import VHDXFormat

/// The metadata changes one write collects before committing them as one log entry: sector
/// bitmap pages (4 KiB images keyed by file offset) and BAT entries. Bitmap pages go first, so
/// that even if the log splits the change, a BAT entry never names bits that are not yet set.
struct PendingMetadata {
    var bitmapPages: [UInt64: [UInt8]] = [:]
    var bat: [(UInt64, BATEntry)] = []
    /// Sector bitmap blocks allocated by this change, by chunk (the BAT does not show them yet).
    var newBitmaps: [UInt64: UInt64] = [:]

    var isEmpty: Bool { bitmapPages.isEmpty && bat.isEmpty }
}

extension VHDXFile {
    /// Logs and applies everything `pending` holds.
    /// The observer's staged pages go in the same entry, first: with the change's own
    /// metadata they become durable together (vhdx-format.md §5.6).
    func commit(_ pending: PendingMetadata) throws(VHDXError) {
        guard !pending.isEmpty else { return }
        var updates = takeStagedPages()
        updates += pending.bitmapPages.keys.sorted().map { .data(fileOffset: $0, bytes: pending.bitmapPages[$0]!) }
        if !pending.bat.isEmpty { updates += try batSectorUpdates(pending.bat, regionOffset: layout.batRegion.fileOffset) }
        try commitMetadata(updates)
        for (index, entry) in pending.bat { bat.store(index, entry) }
    }

    /// Sets the sector-bitmap bits of `sectors` (numbers within `block`), allocating the chunk's
    /// bitmap block first if it has none. `fresh`: the block is becoming PARTIALLY_PRESENT now,
    /// so every other bit of its slice is cleared first: bits are meaningless outside that state
    /// (another writer may have left them set), and a stale 1 would hide the parent's sector.
    func setSectorBits(block: UInt64, sectors: Range<UInt64>, fresh: Bool = false, in pending: inout PendingMetadata) throws(VHDXError) {
        let chunk = block / geometry.chunkRatio
        let base: UInt64
        if let b = pending.newBitmaps[chunk] {
            base = b
        } else if let sb = try sectorBitmapEntry(chunk: chunk), sb.state == SectorBitmapState.present.rawValue {
            base = sb.fileOffset
        } else {
            base = try allocate(Layout.sectorBitmapBlockSize)
            pending.newBitmaps[chunk] = base
            pending.bat.append((geometry.sectorBitmapIndex(chunk: chunk), BATEntry(state: SectorBitmapState.present.rawValue, fileOffsetMB: base / Layout.MiB)))
        }
        let slice = base * 8 + geometry.bitmapSliceOffset(block: block) * 8  // in bits from file offset 0
        if fresh { try updateBits(slice..<slice + geometry.sectorsPerBlock, to: false, in: &pending) }
        try updateBits(slice + sectors.lowerBound..<slice + sectors.upperBound, to: true, in: &pending)
    }

    /// Sets or clears bits [range) (bit numbers from file offset 0), page by page; a page the
    /// change leaves as it was is not logged.
    private func updateBits(_ range: Range<UInt64>, to value: Bool, in pending: inout PendingMetadata) throws(VHDXError) {
        let end = range.upperBound
        var bit = range.lowerBound
        while bit < end {
            let page = bit / 8 / 4096 * 4096
            let pageEndBit = (page + 4096) * 8
            let upTo = min(end, pageEndBit)
            // A page whose bits are all set already (a rewrite of present sectors) is not logged.
            var image: [UInt8]
            if let held = pending.bitmapPages[page] { image = held } else { image = try storage.read(count: 4096, at: page) }
            let before = image
            let bits = Int(bit - page * 8)..<Int(upTo - page * 8)
            if value { SectorBitmap.set(&image, bits) } else { SectorBitmap.clear(&image, bits) }
            if image != before || pending.bitmapPages[page] != nil { pending.bitmapPages[page] = image }
            bit = upTo
        }
    }

    /// `length` bytes (a multiple of 1 MiB) of 1 MiB-aligned space at the end of the file that
    /// read as zeros: space past everything referenced may hold stale bytes of an allocation
    /// a crash cut short, so it is cleared first.
    func allocate(_ length: UInt64) throws(VHDXError) -> UInt64 {
        let offset = nextFreeOffset
        nextFreeOffset += length
        bitmapPages.removeAll()  // the space is cleared below; no cached page may outlive that
        let size = try storage.size()
        if offset < size { try storage.discard(offset: offset, length: min(size, nextFreeOffset) - offset) }
        if size < nextFreeOffset { try storage.resize(to: nextFreeOffset) }
        return offset
    }
}
