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
            guard diskType != .differencing else { throw needsParent(block) }
            piece.initializeMemory(as: UInt8.self, repeating: 0)
        case .partiallyPresent:
            guard diskType == .differencing else {
                throw VHDXError(.corrupt, "block \(block) is PARTIALLY_PRESENT, a state only a differencing disk may hold", path: storage.name,
                                at: layout.batRegion.fileOffset + geometry.payloadIndex(block: block) * 8)
            }
            throw needsParent(block)
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

    private func needsParent(_ block: UInt64) -> VHDXError {
        VHDXError(.unsupported, "block \(block) of this differencing disk needs data from its parent; reading through a parent chain is not supported yet",
                  path: storage.name)
    }
}
