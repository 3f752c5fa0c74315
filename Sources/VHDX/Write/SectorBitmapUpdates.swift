import VHDXFormat

extension VHDXFile {
    /// Sets the sector-bitmap bits of `sectors` (numbers within `block`) in `transaction`,
    /// allocating the chunk's bitmap block first if it has none. `fresh`: the block is becoming
    /// PARTIALLY_PRESENT now, so every other bit of its slice is cleared first: bits are
    /// meaningless outside that state (another writer may have left them set), and a stale 1
    /// would hide the parent's sector.
    func setSectorBits(block: UInt64, sectors: Range<UInt64>, fresh: Bool = false, in transaction: inout MetadataTransaction) throws(VHDXError) {
        let chunk = block / geometry.chunkRatio
        let base: MiBOffset
        if let b = transaction.newBitmaps[chunk] {
            base = b
        } else if let sb = try sectorBitmapEntry(chunk: chunk), sb.state == SectorBitmapState.present.rawValue {
            base = sb.offset
        } else {
            base = try allocate(Layout.sectorBitmapBlockSize)
            transaction.newBitmaps[chunk] = base
            transaction.batEntries.append((geometry.sectorBitmapIndex(chunk: chunk), BATEntry(sectorBitmap: .present, offset: base)))
        }
        let slice = base.bytes * 8 + geometry.bitmapSliceOffset(block: block) * 8  // in bits from file offset 0
        if fresh { try updateBits(slice..<slice + geometry.sectorsPerBlock, to: false, in: &transaction) }
        try updateBits(slice + sectors.lowerBound..<slice + sectors.upperBound, to: true, in: &transaction)
    }

    /// Sets or clears bits [range) (bit numbers from file offset 0), page by page; a page the
    /// change leaves as it was is not logged.
    private func updateBits(_ range: Range<UInt64>, to value: Bool, in transaction: inout MetadataTransaction) throws(VHDXError) {
        let end = range.upperBound
        var bit = range.lowerBound
        while bit < end {
            let page = bit / 8 / 4096 * 4096
            let pageEndBit = (page + 4096) * 8
            let upTo = min(end, pageEndBit)
            // A page whose bits are all set already (a rewrite of present sectors) is not logged.
            var image: [UInt8]
            if let held = transaction.bitmapPages[page] { image = held } else { image = try storage.read(count: 4096, at: page) }
            let before = image
            let bits = Int(bit - page * 8)..<Int(upTo - page * 8)
            if value { SectorBitmap.set(&image, bits) } else { SectorBitmap.clear(&image, bits) }
            if image != before || transaction.bitmapPages[page] != nil { transaction.bitmapPages[page] = image }
            bit = upTo
        }
    }
}
