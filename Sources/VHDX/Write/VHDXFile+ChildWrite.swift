import VHDXFormat

extension VHDXFile {
    /// One block's part of a write into a differencing image (sector-aligned).
    ///
    /// - FULLY_PRESENT: written in place.
    /// - PARTIALLY_PRESENT: written in place; the sectors' bits are set.
    /// - NOT_PRESENT: a whole block becomes FULLY_PRESENT; otherwise the block is allocated, the
    ///   piece written and its bits set (PARTIALLY_PRESENT), the other sectors still coming from
    ///   the parent.
    /// - ZERO, UNMAPPED, UNDEFINED: these read as zeros and never from the parent, so the
    ///   block is allocated (zero-filled) and becomes FULLY_PRESENT: a partial block could not
    ///   keep its unwritten sectors reading as zeros otherwise.
    func writeChildBlock(block: UInt64, inBlock: UInt64, _ piece: UnsafeRawBufferPointer, _ transaction: inout MetadataTransaction) throws(VHDXError) {
        let entry = try payloadEntry(block: block)
        let index = geometry.payloadIndex(block: block)
        let lss = geometry.logicalSectorSize
        let sectors = inBlock / lss..<(inBlock + UInt64(piece.count)) / lss
        let blockEnd = min(blockSize, virtualSize - block * blockSize)
        let whole = inBlock == 0 && UInt64(piece.count) == blockEnd
        switch PayloadBlockState(rawValue: entry.state) {
        case .fullyPresent:
            try commitStagedPages()  // in place: the observer's record must be durable first
            try storage.write(piece, at: entry.fileOffset + inBlock)
        case .partiallyPresent:
            try commitStagedPages()
            try storage.write(piece, at: entry.fileOffset + inBlock)
            if whole {
                transaction.batEntries.append((index, BATEntry(state: .fullyPresent, offset: entry.offset)))
            } else {
                try setSectorBits(block: block, sectors: sectors, in: &transaction)
            }
        case .notPresent:
            let at = try allocate(blockSize)
            try storage.write(piece, at: at.bytes + inBlock)
            if whole {
                transaction.batEntries.append((index, BATEntry(state: .fullyPresent, offset: at)))
            } else {
                try setSectorBits(block: block, sectors: sectors, fresh: true, in: &transaction)
                transaction.batEntries.append((index, BATEntry(state: .partiallyPresent, offset: at)))
            }
        case .zero, .unmapped, .unmappedV095, .undefined:
            if isAllZero(piece) { return }
            let at = try allocate(blockSize)
            try storage.write(piece, at: at.bytes + inBlock)
            transaction.batEntries.append((index, BATEntry(state: .fullyPresent, offset: at)))
        case nil:
            throw VHDXError(.corrupt, "block \(block) has invalid BAT state \(entry.state)", path: storage.name,
                            at: layout.batRegion.fileOffset + index * UInt64(BATEntry.encodedSize))
        }
    }
}
