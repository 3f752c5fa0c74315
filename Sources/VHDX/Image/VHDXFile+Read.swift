import VHDXFormat

extension VHDXFile {
    /// Fills `buffer` with virtual-disk bytes starting at `offset`. Any byte range is allowed;
    /// memory use is the caller's buffer only.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        let count = UInt64(buffer.count)
        guard offset <= virtualSize, count <= virtualSize - offset else {
            throw VHDXError(.outOfBounds, "read of \(count) bytes at virtual offset \(offset) is beyond the \(virtualSize)-byte disk", path: storage.name)
        }
        var done: UInt64 = 0
        while done < count {
            let v = offset + done
            let block = v / blockSize
            let inBlock = v % blockSize
            let n = min(count - done, blockSize - inBlock)
            let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[Int(done)..<Int(done + n)])
            try readWithinBlock(block: block, inBlock: inBlock, into: piece)
            done += n
        }
    }

    public func read(at offset: UInt64, count: Int) throws(VHDXError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try typed { try out.withUnsafeMutableBytes { b in try read(into: b, at: offset) } }
        return out
    }

    private func readWithinBlock(block: UInt64, inBlock: UInt64, into piece: UnsafeMutableRawBufferPointer) throws(VHDXError) {
        let entry = try payloadEntry(block: block)
        switch PayloadBlockState(rawValue: entry.state) {
        case .fullyPresent:
            try readData(entry, block: block, inBlock: inBlock, into: piece)
        case .zero, .unmapped, .unmappedV095, .undefined:
            piece.initializeMemory(as: UInt8.self, repeating: 0)
        case .notPresent:
            guard diskType == .differencing else { piece.initializeMemory(as: UInt8.self, repeating: 0); return }
            try readParent(into: piece, at: block * blockSize + inBlock)
        case .partiallyPresent:
            guard diskType == .differencing else {
                throw VHDXError(.corrupt, "block \(block) is PARTIALLY_PRESENT, a state only a differencing disk may hold", path: storage.name,
                                at: layout.batRegion.fileOffset + geometry.payloadIndex(block: block) * 8)
            }
            try readPartial(entry, block: block, inBlock: inBlock, into: piece)
        case nil:
            throw VHDXError(.corrupt, "block \(block) has invalid BAT state \(entry.state)", path: storage.name,
                            at: layout.batRegion.fileOffset + geometry.payloadIndex(block: block) * 8)
        }
    }

    private func readData(_ entry: BATEntry, block: UInt64, inBlock: UInt64, into piece: UnsafeMutableRawBufferPointer) throws(VHDXError) {
        guard entry.fileOffset >= Layout.headerSectionSize else {
            throw VHDXError(.corrupt, "block \(block) is present but its file offset \(entry.fileOffset) lies in the header section",
                            path: storage.name, at: layout.batRegion.fileOffset + geometry.payloadIndex(block: block) * 8)
        }
        let (at, overflow) = entry.fileOffset.addingReportingOverflow(inBlock)
        guard !overflow else {
            throw VHDXError(.corrupt, "block \(block) has file offset \(entry.fileOffset), beyond any file", path: storage.name)
        }
        // Through `io`: a replayed log may have grown the file to hold this block.
        try io.read(into: piece, at: at)
    }

    /// A PARTIALLY_PRESENT block: sectors whose bitmap bit is 1 come from this file, the rest
    /// from the parent, a run of equal bits at a time.
    private func readPartial(_ entry: BATEntry, block: UInt64, inBlock: UInt64, into piece: UnsafeMutableRawBufferPointer) throws(VHDXError) {
        try forEachBitmapRun(block: block, inBlock: inBlock, count: UInt64(piece.count)) { (present, a, b) throws(VHDXError) in
            let sub = UnsafeMutableRawBufferPointer(rebasing: piece[Int(a - inBlock)..<Int(b - inBlock)])
            if present {
                try readData(entry, block: block, inBlock: a, into: sub)
            } else {
                try readParent(into: sub, at: block * blockSize + a)
            }
        }
    }

    /// The runs of equal sector-bitmap bits over bytes [inBlock, inBlock + count) of a
    /// PARTIALLY_PRESENT block, clipped to that range: (bit is 1, start, end), offsets in the block.
    func forEachBitmapRun(block: UInt64, inBlock: UInt64, count: UInt64, _ body: (Bool, UInt64, UInt64) throws(VHDXError) -> Void) throws(VHDXError) {
        let lss = geometry.logicalSectorSize
        let end = inBlock + count
        let firstSector = inBlock / lss, lastSector = (end - 1) / lss
        let bits = try sectorBitmapBytes(block: block, sectors: firstSector...lastSector)
        let skip = Int(firstSector % 8)
        let runs = bits.withUnsafeBytes { SectorBitmap.runs($0, first: skip, count: Int(lastSector - firstSector) + 1) }
        for run in runs {
            let a = max(inBlock, (firstSector + UInt64(run.bits.lowerBound - skip)) * lss)
            let b = min(end, (firstSector + UInt64(run.bits.upperBound - skip)) * lss)
            try body(run.present, a, b)
        }
    }

    /// The bitmap bytes holding the bits of `sectors` (sector numbers within `block`), from the
    /// byte holding the first.
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

    /// Reads through to the parent. A child may be larger than its parent: bytes past the
    /// parent's end read as zeros.
    func readParent(into piece: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        guard let parent else {
            throw VHDXError(.parentNotFound, "virtual offset \(offset) of this differencing image is in its parent, which is not open",
                            path: storage.name)
        }
        let inParent = offset < parent.virtualSize ? Int(min(UInt64(piece.count), parent.virtualSize - offset)) : 0
        if inParent > 0 { try parent.read(into: UnsafeMutableRawBufferPointer(rebasing: piece[0..<inParent]), at: offset) }
        if inParent < piece.count {
            UnsafeMutableRawBufferPointer(rebasing: piece[inParent...]).initializeMemory(as: UInt8.self, repeating: 0)
        }
    }
}
