import VHDXFormat

extension VHDXFile {
    /// Writes `data` at virtual `offset`. New blocks are allocated at the end of the file; the
    /// rest of a new block reads as zeros, as it did before.
    public func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        try change(.write, offset, UInt64(data.count)) { () throws(VHDXError) in try writeBlocks(data, at: offset) }
    }

    /// Splits a write at block boundaries and commits the metadata it needs as one change. In a
    /// differencing image, a write that does not cover whole sectors is widened to them with
    /// the bytes the chain holds (the sector bitmap has one bit per sector).
    func writeBlocks(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        let lss = geometry.logicalSectorSize
        let end = offset + UInt64(data.count)
        if diskType == .differencing, offset % lss != 0 || end % lss != 0 {
            let start = offset / lss * lss
            var widened = [UInt8](repeating: 0, count: Int((end + lss - 1) / lss * lss - start))
            try typed { try widened.withUnsafeMutableBytes { b in
                try read(into: UnsafeMutableRawBufferPointer(rebasing: b[0..<Int(lss)]), at: start)
                try read(into: UnsafeMutableRawBufferPointer(rebasing: b[(b.count - Int(lss))...]), at: start + UInt64(b.count) - lss)
                UnsafeMutableRawBufferPointer(rebasing: b[Int(offset - start)..<Int(end - start)]).copyMemory(from: data)
            } }
            return try typed { try widened.withUnsafeBytes { b in try writeBlocks(b, at: start) } }
        }
        var done: UInt64 = 0
        var transaction = MetadataTransaction()
        while done < UInt64(data.count) {
            let v = offset + done
            let block = v / blockSize, inBlock = v % blockSize
            let n = min(UInt64(data.count) - done, blockSize - inBlock)
            let piece = UnsafeRawBufferPointer(rebasing: data[Int(done)..<Int(done + n)])
            if diskType == .differencing {
                try writeChildBlock(block: block, inBlock: inBlock, piece, &transaction)
            } else if let update = try writeWithinBlock(block: block, inBlock: inBlock, piece) {
                transaction.batEntries.append(update)
            }
            done += n
        }
        try commit(transaction)
    }

    /// Writes `bytes` to the virtual disk at `offset`.
    public func write(_ bytes: [UInt8], at offset: UInt64) throws(VHDXError) {
        try typed { try bytes.withUnsafeBytes { b in try write(b, at: offset) } }
    }

    /// Makes a range read as zeros: whole blocks become PAYLOAD_BLOCK_ZERO (their space is
    /// released), partial blocks have zeros written. Fixed disks keep every block allocated.
    public func writeZeroes(at offset: UInt64, length: UInt64) throws(VHDXError) {
        try change(.zero, offset, length) { () throws(VHDXError) in try clear(offset, length, to: .zero) }
    }

    /// Discards a range: whole blocks become PAYLOAD_BLOCK_UNMAPPED and their space is released;
    /// partial blocks are left as they are (a trim is advisory). No effect on fixed disks.
    public func trim(at offset: UInt64, length: UInt64) throws(VHDXError) {
        try change(.trim, offset, length) { () throws(VHDXError) in
            guard diskType != .fixed else { return }
            try clear(offset, length, to: .unmapped)
        }
    }

    /// Makes every acknowledged change durable.
    public func flush() throws(VHDXError) {
        try requireChangeable()
        try observer?.willFlush(self)
        try commitStagedPages()
        try storage.synchronize()
    }

    /// Flushes and leaves an empty log. Further writes reopen the log as needed.
    /// A pending log found at open is written into the file here if no change did it before.
    public func close() throws(VHDXError) {
        guard storage.isWritable else { return }
        // After a failed change the observer's record is left as the change's start made it
        // durable (its write-ahead marks cover the change); nothing more is written but the log's end.
        if journal.failure == nil {
            try replayPendingLog()
            try observer?.willClose(self)
            try commitStagedPages()
        }
        try closeJournal()
    }

    // MARK: - One place every change to virtual content passes through

    /// Validates the range, renews DataWriteGuid on the session's first user-visible change,
    /// tells the observer, then applies the change.
    func change(_ kind: ChangeKind, _ offset: UInt64, _ length: UInt64, _ apply: () throws(VHDXError) -> Void) throws(VHDXError) {
        try requireChangeable()
        try checkRange(kind.rawValue, offset: offset, length: length)
        guard length > 0 else { return }
        try beginUserVisibleChange(kind, offset..<offset + length)
        try failSafe { () throws(VHDXError) in
            try apply()
            // Pages the observer staged for a change that needed no metadata of its own.
            try commitStagedPages()
        }
    }

    /// Renews DataWriteGuid before the session's first user-visible change (children and
    /// change tracking rely on it changing), then tells the observer.
    /// On the session's first change the observer's record of the session and of the change
    /// go into one log entry, before DataWriteGuid is written (marks that precede the change
    /// only make answers larger).
    func beginUserVisibleChange(_ kind: ChangeKind, _ range: Range<UInt64>, newSize: UInt64? = nil) throws(VHDXError) {
        let tell = { () throws(VHDXError) -> Void in
            guard let observer = self.observer else { return }
            try observer.willChange(self, kind, range, newSize: newSize)
        }
        if !session.dataWriteGUIDRenewed {
            // Except a resize: what the observer records about it (the new size) must land in
            // the resize's own log entry, not before it.
            if kind == .resize {
                try renewDataWriteGUID()
                try tell()
            } else {
                try renewDataWriteGUID(alsoStaging: tell)
            }
        } else {
            try tell()
        }
    }

    /// The session's DataWriteGuid renewal, done once. A merge calls it first with `guid`: the
    /// value it has already stored in the child's parent_linkage2, so the child keeps linking
    /// to this image across the change (vhdx-format.md §2.4); otherwise a random GUID, or the
    /// one the observer chose (and recorded) for this session.
    /// `alsoStaging`: what else the observer stages for the same commit (the first change).
    func renewDataWriteGUID(to guid: GUID? = nil, alsoStaging: (() throws(VHDXError) -> Void)? = nil) throws(VHDXError) {
        let chosen = try observer?.sessionWillBegin(self, proposed: guid) ?? guid ?? .random()
        if let guid, chosen != guid {
            throw VHDXError(.invalidArgument, "the change observer chose DataWriteGuid {\(chosen)} where {\(guid)} is required", path: storage.name)
        }
        try alsoStaging?()
        // The observer's record first; the header is read after it, since that commit may be
        // the session's first and set LogGuid (a header taken before would clear it again).
        try commitStagedPages()
        try openForWrites()  // FileWriteGuid renewed (and a pending log replayed) before the header is taken
        var h = layout.header
        h.dataWriteGUID = chosen
        try writeHeaders(h)
        session.markDataWriteGUIDRenewed()
    }

    /// Throws unless [offset, offset + length) lies inside the virtual disk. Callers that apply
    /// one request in several pieces check the whole request first, so a request that runs
    /// past the end is refused with nothing written.
    public func checkRange(_ what: String = "write", offset: UInt64, length: UInt64) throws(VHDXError) {
        guard offset <= virtualSize, length <= virtualSize - offset else {
            throw VHDXError(.outOfBounds, "\(what) of \(length) bytes at \(offset) runs past the end of the \(virtualSize)-byte disk; nothing was written",
                            path: storage.name)
        }
    }

    func requireWritable() throws(VHDXError) {
        guard storage.isWritable else { throw VHDXError(.readOnly, "the image was opened read-only", path: storage.name) }
    }

    // MARK: - Blocks

    private func writeWithinBlock(block: UInt64, inBlock: UInt64, _ piece: UnsafeRawBufferPointer) throws(VHDXError) -> (UInt64, BATEntry)? {
        let entry = try payloadEntry(block: block)
        switch PayloadBlockState(rawValue: entry.state) {
        case .fullyPresent:
            try commitStagedPages()  // in place: the observer's record must be durable first
            try storage.write(piece, at: entry.fileOffset + inBlock)
            return nil
        case .notPresent, .undefined, .zero, .unmapped, .unmappedV095:
            // These read as zeros: writing zeros into them changes nothing.
            if isAllZero(piece) { return nil }
            let at = try allocate(blockSize)
            try storage.write(piece, at: at.bytes + inBlock)
            return (geometry.payloadIndex(block: block), BATEntry(state: .fullyPresent, offset: at))
        case .partiallyPresent, nil:
            throw VHDXError(.corrupt, "block \(block) has state \(entry.state), which a non-differencing disk cannot hold", path: storage.name)
        }
    }

    private func zeroThroughWrites(_ offset: UInt64, _ length: UInt64, _ zeros: [UInt8]) throws(VHDXError) {
        var done: UInt64 = 0
        while done < length {
            let k = Int(min(length - done, UInt64(zeros.count)))
            try typed { try zeros.withUnsafeBytes { z in try writeBlocks(UnsafeRawBufferPointer(rebasing: z[0..<k]), at: offset + done) } }
            done += UInt64(k)
        }
    }

    /// `target`: `.zero` or `.unmapped`, what whole blocks become.
    private func clear(_ offset: UInt64, _ length: UInt64, to target: BATEntry) throws(VHDXError) {
        var v = offset
        let end = offset + length
        var transaction = MetadataTransaction()
        var released: [UInt64] = []
        let zeros = [UInt8](repeating: 0, count: Int(min(blockSize, 8 << 20)))
        while v < end {
            let block = v / blockSize, inBlock = v % blockSize
            let blockEnd = min((block + 1) * blockSize, virtualSize)
            let n = min(end, blockEnd) - v
            let entry = try payloadEntry(block: block)
            let allocated = entry.state == PayloadBlockState.fullyPresent.rawValue || entry.state == PayloadBlockState.partiallyPresent.rawValue
            let whole = inBlock == 0 && v + n == blockEnd
            if whole && diskType != .fixed {
                if entry.state != target.state {
                    transaction.batEntries.append((geometry.payloadIndex(block: block), target))
                    if allocated { released.append(entry.fileOffset) }
                }
            } else if target == .zero {
                // Through the write path: it skips blocks that already read as zeros, and in a
                // child it sets the bits of sectors the parent would otherwise supply.
                try zeroThroughWrites(v, n, zeros)
            }
            v += n
        }
        try commit(transaction)
        // Only once no entry points at them (the change is in the log): release the blocks.
        for offset in released { try storage.discard(offset: offset, length: blockSize) }
    }
}
