import VHDXFormat

extension VHDXFile {
    /// The smallest size the disk can shrink to without dropping data: the end of its last
    /// non-zero byte, rounded up to a logical sector (at least one sector).
    public func minimumSize() throws(VHDXError) -> UInt64 {
        let lss = UInt64(layout.logicalSectorSize)
        var block = geometry.dataBlockCount
        while block > 0 {
            block -= 1
            let entry = try payloadEntry(block: block)
            guard entry.state == PayloadBlockState.fullyPresent.rawValue else { continue }
            let start = block * blockSize
            if let last = try lastNonZero(from: start, to: min(start + blockSize, virtualSize)) {
                return max(lss, (last + 1 + lss - 1) / lss * lss)
            }
        }
        return lss
    }

    /// Changes the virtual size (Resize-VHD). Growing adds blocks that read as zeros (allocated
    /// ones on a fixed disk) and moves the BAT to a larger region when it must; shrinking is
    /// refused if any byte past the new end holds data. The size item, BAT entries and region
    /// table change together in one log entry.
    public func resize(to newSize: UInt64) throws(VHDXError) {
        try requireChangeable()
        guard diskType != .differencing else { throw VHDXError(.unsupported, "resizing a differencing disk is not supported yet", path: storage.name) }
        let lss = UInt64(layout.logicalSectorSize)
        guard newSize > 0, newSize <= Layout.maxVirtualDiskSize, newSize % lss == 0 else {
            throw VHDXError(.invalidArgument, "size \(newSize) must be a multiple of \(lss) bytes between \(lss) bytes and 64 TiB", path: storage.name)
        }
        let old = virtualSize
        guard newSize != old else { return }
        if newSize < old, let at = try lastNonZero(from: newSize, to: old) {
            throw VHDXError(.invalidArgument, "cannot shrink to \(newSize) bytes: byte \(at) holds data (the minimum is \(try minimumSize()) bytes)", path: storage.name)
        }
        try beginUserVisibleChange(.resize, min(old, newSize)..<max(old, newSize), newSize: newSize)
        try failSafe { () throws(VHDXError) in try applyResize(to: newSize, from: old) }
    }

    private func applyResize(to newSize: UInt64, from old: UInt64) throws(VHDXError) {
        let newGeometry = BATGeometry(virtualDiskSize: newSize, blockSize: layout.fileParameters.blockSize,
                                      logicalSectorSize: layout.logicalSectorSize, hasParent: false)
        var updates: [LogEntry.Update] = []
        var batChanges: [(UInt64, BATEntry)] = []
        var released: [UInt64] = []
        var batRegion = layout.batRegion
        if newSize < old {
            // Blocks wholly past the new end go; their entries become empty.
            for block in newGeometry.dataBlockCount..<geometry.dataBlockCount {
                let e = try payloadEntry(block: block)
                if e.raw != 0 { batChanges.append((geometry.payloadIndex(block: block), BATEntry(raw: 0))) }
                if e.state == PayloadBlockState.fullyPresent.rawValue { released.append(e.fileOffset) }
            }
        } else {
            if newGeometry.minimumTableBytes > UInt64(batRegion.length) {
                batRegion = try relocateBAT(minimumBytes: newGeometry.minimumTableBytes)
                var table = layout.regionTable
                table.entries = table.entries.map { $0.guid == KnownGUID.batRegion ? batRegion : $0 }
                let bytes = table.encode()
                for off in Layout.regionTableOffsets { updates += LogEntry.Update.sectors(of: bytes, at: off) }
            }
            let added = newGeometry.dataBlockCount - geometry.dataBlockCount
            // A fixed disk's new blocks must read as zeros: `allocate` clears whatever stale
            // bytes the file held past its referenced end.
            var next = diskType == .fixed ? try allocate(added * blockSize) : 0
            for block in geometry.dataBlockCount..<newGeometry.dataBlockCount {
                var entry = BATEntry(raw: 0)
                if diskType == .fixed {
                    entry = BATEntry(state: PayloadBlockState.fullyPresent.rawValue, fileOffsetMB: next / Layout.MiB)
                    next += blockSize
                }
                batChanges.append((newGeometry.payloadIndex(block: block), entry))
            }
        }
        // BAT sectors (in the region that will be current), the size item, the region table: one entry.
        updates += try batSectorUpdates(batChanges, regionOffset: batRegion.fileOffset, zeroFrom: geometry.totalEntries, to: newGeometry.totalEntries)
        var w = ByteWriter()
        VirtualDiskSize(newSize).encode(into: &w)
        updates += try metadataItemUpdates(KnownGUID.virtualDiskSize, w.bytes)
        let oldBAT = layout.batRegion
        try commitMetadata(takeStagedPages() + updates)

        layout.virtualDiskSize = newSize
        layout.geometry = newGeometry
        layout.batEntriesUsed = newGeometry.totalEntries
        if batRegion != oldBAT {
            layout.batRegion = batRegion
            layout.regionTable.entries = layout.regionTable.entries.map { $0.guid == KnownGUID.batRegion ? batRegion : $0 }
            try storage.discard(offset: oldBAT.fileOffset, length: UInt64(oldBAT.length))
        }
        bat = BATTable(storage: io, regionOffset: batRegion.fileOffset, entryCount: newGeometry.totalEntries)
        for offset in released { try storage.discard(offset: offset, length: blockSize) }
    }

    /// Copies the BAT into a new, larger region at the end of the file (not yet referenced, so
    /// written directly and flushed before the region table that points at it is logged).
    private func relocateBAT(minimumBytes: UInt64) throws(VHDXError) -> RegionTableEntry {
        guard let length = minimumBytes.roundedUp(to: Layout.MiB), length <= UInt64(UInt32.max) / Layout.MiB * Layout.MiB else {
            throw VHDXError(.invalidArgument, "the BAT would need \(minimumBytes) bytes", path: storage.name)
        }
        let offset = nextFreeOffset
        nextFreeOffset += length
        try storage.resize(to: max(try storage.size(), nextFreeOffset))
        let old = layout.batRegion
        var copied: UInt64 = 0
        let usedBytes = geometry.totalEntries * 8
        while copied < usedBytes {
            let n = min(UInt64(8 << 20), usedBytes - copied)
            try storage.write(try io.read(count: Int(n), at: old.fileOffset + copied), at: offset + copied)
            copied += n
        }
        try storage.writeZeros(offset: offset + usedBytes, length: length - usedBytes)
        return RegionTableEntry(guid: KnownGUID.batRegion, fileOffset: offset, length: UInt32(length), required: old.isRequired)
    }

    /// 4 KiB BAT sector images with `changes` applied and entries [zeroFrom, to) cleared.
    func batSectorUpdates(_ changes: [(UInt64, BATEntry)], regionOffset: UInt64, zeroFrom: UInt64 = 0, to: UInt64 = 0) throws(VHDXError) -> [LogEntry.Update] {
        var all = changes
        // Entries a grown table starts to use must read as empty, whatever the region held.
        var i = zeroFrom
        while i < to {
            let n = min(to - i, 128 * 1024)
            let raw = try storage.read(count: Int(n * 8), at: regionOffset + i * 8)
            if !raw.withUnsafeBytes({ isAllZero($0) }) {
                for k in 0..<n where raw[Int(k) * 8..<Int(k) * 8 + 8].contains(where: { $0 != 0 }) { all.append((i + k, BATEntry(raw: 0))) }
            }
            i += n
        }
        var sectors: [UInt64: [UInt8]] = [:]
        for (index, entry) in all {
            let byte = index * 8
            let sector = byte / 4096 * 4096
            if sectors[sector] == nil { sectors[sector] = try storage.read(count: 4096, at: regionOffset + sector) }
            for k in 0..<8 { sectors[sector]![Int(byte - sector) + k] = UInt8(truncatingIfNeeded: entry.raw >> (8 * UInt64(k))) }
        }
        return sectors.keys.sorted().map { .data(fileOffset: regionOffset + $0, bytes: sectors[$0]!) }
    }

    /// The 4 KiB sector image(s) of the metadata region with item `id` replaced by `bytes`.
    func metadataItemUpdates(_ id: GUID, _ bytes: [UInt8]) throws(VHDXError) -> [LogEntry.Update] {
        guard let e = layout.metadataTable.entry(id), Int(e.length) == bytes.count else {
            throw VHDXError(.corrupt, "metadata item \(KnownGUID.metadataItemName(id)) is missing or has an unexpected length", path: storage.name)
        }
        let at = layout.metadataRegion.fileOffset + UInt64(e.offset)
        let first = at / 4096 * 4096
        let last = (at + UInt64(bytes.count) - 1) / 4096 * 4096
        var image = try storage.read(count: Int(last - first) + 4096, at: first)
        image.replaceSubrange(Int(at - first)..<Int(at - first) + bytes.count, with: bytes)
        return LogEntry.Update.sectors(of: image, at: first)
    }

    /// The offset of the last non-zero byte in [from, to), reading only allocated blocks.
    func lastNonZero(from: UInt64, to: UInt64) throws(VHDXError) -> UInt64? {
        guard from < to else { return nil }
        var blockIndex = (to - 1) / blockSize
        let firstBlock = from / blockSize
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let entry = try payloadEntry(block: blockIndex)
            if entry.state == PayloadBlockState.fullyPresent.rawValue {
                let bStart = max(from, blockIndex * blockSize)
                var end = min(to, (blockIndex + 1) * blockSize)
                while end > bStart {
                    let n = min(UInt64(buffer.count), end - bStart)
                    let start = end - n
                    try typed { try buffer.withUnsafeMutableBytes { b in try read(into: UnsafeMutableRawBufferPointer(rebasing: b[0..<Int(n)]), at: start) } }
                    if let i = buffer[0..<Int(n)].lastIndex(where: { $0 != 0 }) { return start + UInt64(i) }
                    end = start
                }
            }
            if blockIndex == firstBlock { return nil }
            blockIndex -= 1
        }
    }
}
