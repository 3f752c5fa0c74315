import VHDXFormat

/// What `compact` did.
public struct CompactReport: Sendable {
    /// Blocks that read as zeros, made ZERO and their space released.
    public var zeroBlocksReleased = 0
    /// Blocks moved down into gaps.
    public var blocksMoved = 0
    /// The file size before compaction.
    public var fileSizeBefore: UInt64 = 0
    /// The file size after compaction.
    public var fileSizeAfter: UInt64 = 0
    /// Disk space the file occupies (holes excluded), before and after; nil off a real file.
    public var diskUsageBefore: UInt64?
    /// Disk space the file uses after compaction (allocated blocks of the filesystem).
    public var diskUsageAfter: UInt64?
    /// Disk space given back (disk usage before minus after), or, off a real file, the bytes
    /// the image stopped referencing.
    public var bytesReclaimed: UInt64 = 0
}

extension VHDXFile {
    /// Optimize-VHD for dynamic disks: blocks that read as all zeros become PAYLOAD_BLOCK_ZERO
    /// and release their space; blocks near the end of the file move down into free gaps; the
    /// file is then cut after its last object. Each move is copy, flush, then a logged BAT
    /// change, so a crash leaves either the old place or the new one referenced.
    public func compact() throws(VHDXError) -> CompactReport {
        try requireChangeable()
        guard diskType == .dynamic else {
            throw VHDXError(.unsupported, diskType == .fixed ? "a fixed disk keeps every block allocated (LeaveBlockAllocated); convert it to dynamic instead"
                                                              : "compacting a differencing disk is not supported yet", path: storage.name)
        }
        return try failSafe(compactDynamic)
    }

    private func compactDynamic() throws(VHDXError) -> CompactReport {
        var report = CompactReport()
        report.fileSizeBefore = try storage.size()
        report.diskUsageBefore = try fileStorage?.allocatedBytes()

        // 1. All-zero blocks stop using space.
        var zeroBlocks: [UInt64] = []
        var buffer = [UInt8](repeating: 0, count: Int(min(blockSize, 8 << 20)))
        for block in 0..<geometry.dataBlockCount where try payloadEntry(block: block).state == PayloadBlockState.fullyPresent.rawValue {
            var allZero = true
            var off: UInt64 = 0
            let length = min(blockSize, virtualSize - block * blockSize)
            while off < length && allZero {
                let n = Int(min(UInt64(buffer.count), length - off))
                try typed { try buffer.withUnsafeMutableBytes { b in try read(into: UnsafeMutableRawBufferPointer(rebasing: b[0..<n]), at: block * blockSize + off) } }
                allZero = buffer.withUnsafeBytes { isAllZero(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                off += UInt64(n)
            }
            if allZero { zeroBlocks.append(block) }
        }
        for block in zeroBlocks {
            // Content is unchanged (zeros either way): not a user-visible change, so no observer call.
            let entry = try payloadEntry(block: block)
            try commit(MetadataTransaction(batEntries: [(geometry.payloadIndex(block: block), .zero)]))
            try storage.discard(offset: entry.fileOffset, length: blockSize)
        }
        report.zeroBlocksReleased = zeroBlocks.count

        // 2. Move the highest blocks into the lowest gaps that fit them.
        while true {
            var objects = fixedObjects()
            var blocks: [(block: UInt64, offset: UInt64)] = []
            for block in 0..<geometry.dataBlockCount {
                let e = try payloadEntry(block: block)
                if e.state == PayloadBlockState.fullyPresent.rawValue { blocks.append((block, e.fileOffset)); objects.append((e.fileOffset, e.fileOffset + blockSize)) }
            }
            guard let last = blocks.max(by: { $0.offset < $1.offset }) else { break }
            objects.sort { $0.0 < $1.0 }
            var gap: UInt64?
            var cursor = Layout.headerSectionSize
            for (s, e) in objects {
                if s >= cursor + blockSize { gap = cursor; break }
                cursor = max(cursor, e)
            }
            guard let target = gap, target < last.offset, let newPlace = MiBOffset(bytes: target) else { break }
            var copied: UInt64 = 0
            while copied < blockSize {
                let n = min(UInt64(buffer.count), blockSize - copied)
                try typed { try buffer.withUnsafeMutableBytes { b in try storage.read(into: UnsafeMutableRawBufferPointer(rebasing: b[0..<Int(n)]), at: last.offset + copied) } }
                try typed { try buffer.withUnsafeBytes { b in try storage.write(UnsafeRawBufferPointer(rebasing: b[0..<Int(n)]), at: target + copied) } }
                copied += n
            }
            // The commit flushes the copy before logging the new location.
            try commit(MetadataTransaction(batEntries: [(geometry.payloadIndex(block: last.block), BATEntry(state: .fullyPresent, offset: newPlace))]))
            try storage.discard(offset: last.offset, length: blockSize)
            report.blocksMoved += 1
        }

        // 3. Cut the file after its last object, with the log empty (nothing left to replay
        //    that could point past the new end).
        try closeJournal()
        let end = try referencedEnd()
        if end < report.fileSizeBefore {
            try storage.resize(to: end)
            try storage.synchronize()
        }
        session.resetFreeSpace(to: end)
        report.fileSizeAfter = try storage.size()
        report.diskUsageAfter = try fileStorage?.allocatedBytes()
        if let before = report.diskUsageBefore, let after = report.diskUsageAfter {
            report.bytesReclaimed = before > after ? before - after : 0
        } else {
            report.bytesReclaimed = UInt64(report.zeroBlocksReleased) * blockSize + (report.fileSizeBefore - report.fileSizeAfter)
        }
        return report
    }

    /// Objects that never move: the header section, the log and every region.
    private func fixedObjects() -> [(UInt64, UInt64)] {
        var o: [(UInt64, UInt64)] = [(0, Layout.headerSectionSize)]
        if layout.header.logLength > 0 { o.append((layout.header.logOffset, layout.header.logOffset + UInt64(layout.header.logLength))) }
        for r in layout.regionTable.entries { o.append((r.fileOffset, r.end)) }
        return o
    }
}
