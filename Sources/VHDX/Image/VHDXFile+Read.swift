import VHDXFormat

extension VHDXFile {
    /// Fills `buffer` with virtual-disk bytes starting at `offset`. Any byte range is allowed;
    /// memory use is the caller's buffer (and a bounded list of reads).
    ///
    /// The bytes come from the resolved extents (`forEachResolvedExtent`): reads and chain
    /// resolution share one walk over the block states, and the data is read with as few
    /// preads as `ExtentGather` can join.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        try read(into: buffer, at: offset, maxSpans: ExtentGather.maxSpans)
    }

    /// `read`, with the number of joined reads held before they are issued (tests make it small).
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, maxSpans: Int) throws(VHDXError) {
        let count = UInt64(buffer.count)
        guard offset <= virtualSize, count <= virtualSize - offset else {
            throw VHDXError(.outOfBounds, "read of \(count) bytes at virtual offset \(offset) is beyond the \(virtualSize)-byte disk", path: storage.name)
        }
        guard count > 0 else { return }
        var gather = ExtentGather(into: buffer, layers: chain, maxSpans: maxSpans)
        try forEachResolvedExtent(from: offset, to: offset + count) { (e) throws(VHDXError) in
            let at = Int(e.virtualOffset - offset)
            if e.kind == .data {
                try gather.data(layer: e.layer, fileOffset: e.fileOffset!, at: at, length: Int(e.length))
            } else {
                gather.zeros(at: at, length: Int(e.length))
            }
        }
        try gather.flush()
    }

    /// Reads `count` bytes of the virtual disk from `offset` (through the chain for a differencing image).
    public func read(at offset: UInt64, count: Int) throws(VHDXError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try typed { try out.withUnsafeMutableBytes { b in try read(into: b, at: offset) } }
        return out
    }

    /// The runs of equal sector-bitmap bits over bytes [inBlock, inBlock + count) of a
    /// PARTIALLY_PRESENT block, clipped to that range: (bit is 1, start, end), offsets in the
    /// block. The bits come from the image's bitmap page cache, a 4 KiB page at a time (a
    /// block's slice is 32 bytes to 64 KiB); a run that crosses pages is reported once.
    func forEachBitmapRun(block: UInt64, inBlock: UInt64, count: UInt64, _ body: (Bool, UInt64, UInt64) throws(VHDXError) -> Void) throws(VHDXError) {
        let lss = geometry.logicalSectorSize
        let end = inBlock + count
        let slice = try sectorBitmapOffset(block: block)
        let endSector = (end + lss - 1) / lss
        var sector = inBlock / lss
        var run: (present: Bool, start: UInt64)?
        while sector < endSector {
            let byte = slice + sector / 8
            let page = byte / SectorBitmapCache.pageSize * SectorBitmapCache.pageSize
            let bits = try bitmapPages.page(page, from: io)
            // Bit numbers from the start of the page.
            let first = Int(byte - page) * 8 + Int(sector % 8)
            let last = min(Int(SectorBitmapCache.pageSize) * 8, first + Int(endSector - sector))
            var i = first
            while i < last {
                let present = SectorBitmap.bit(bits, i)
                let j = SectorBitmap.runEnd(bits, from: i, to: last)
                let s = sector + UInt64(i - first)
                if let r = run, r.present != present {
                    try body(r.present, max(inBlock, r.start * lss), min(end, s * lss))
                    run = (present, s)
                } else if run == nil {
                    run = (present, s)
                }
                i = j
            }
            sector += UInt64(last - first)
        }
        if let r = run { try body(r.present, max(inBlock, r.start * lss), min(end, endSector * lss)) }
    }

    /// The bitmap bytes holding the bits of `sectors` (sector numbers within `block`), from the
    /// byte holding the first, read from the file (tests compare them with what was written).
    func sectorBitmapBytes(block: UInt64, sectors: ClosedRange<UInt64>) throws(VHDXError) -> [UInt8] {
        let at = try sectorBitmapOffset(block: block)
        let first = sectors.lowerBound / 8, last = sectors.upperBound / 8
        return try io.read(count: Int(last - first + 1), at: at + first)
    }

    /// File offset of the start of `block`'s slice of its chunk's sector bitmap, which must be
    /// present (the block is PARTIALLY_PRESENT).
    func sectorBitmapOffset(block: UInt64) throws(VHDXError) -> UInt64 {
        let chunk = block / geometry.chunkRatio
        let index = geometry.sectorBitmapIndex(chunk: chunk)
        guard let sb = try sectorBitmapEntry(chunk: chunk), sb.state == SectorBitmapState.present.rawValue, sb.fileOffset >= Layout.headerSectionSize else {
            throw VHDXError(.corrupt, "block \(block) is PARTIALLY_PRESENT but the sector bitmap of chunk \(chunk) is not present", path: storage.name,
                            at: layout.batRegion.fileOffset + index * 8)
        }
        return sb.fileOffset + geometry.bitmapSliceOffset(block: block)
    }
}
