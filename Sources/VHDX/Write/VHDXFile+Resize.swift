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
        var transaction = MetadataTransaction()
        var released: [UInt64] = []
        var batRegion = layout.batRegion
        if newSize < old {
            // Blocks wholly past the new end go; their entries become empty.
            for block in newGeometry.dataBlockCount..<geometry.dataBlockCount {
                let e = try payloadEntry(block: block)
                if e != .notPresent { transaction.batEntries.append((geometry.payloadIndex(block: block), .notPresent)) }
                if e.state == PayloadBlockState.fullyPresent.rawValue { released.append(e.fileOffset) }
            }
        } else {
            if newGeometry.minimumTableBytes > UInt64(batRegion.length) {
                batRegion = try relocateBAT(minimumBytes: newGeometry.minimumTableBytes)
                var table = layout.regionTable
                table.entries = table.entries.map { $0.guid == KnownGUID.batRegion ? batRegion : $0 }
                transaction.leadingPages = regionTablePages(table)
            }
            let added = newGeometry.dataBlockCount - geometry.dataBlockCount
            // A fixed disk's new blocks must read as zeros: `allocate` clears whatever stale
            // bytes the file held past its referenced end.
            var next = diskType == .fixed ? try allocate(added * blockSize) : nil
            for block in geometry.dataBlockCount..<newGeometry.dataBlockCount {
                var entry = BATEntry.notPresent
                if let at = next {
                    entry = BATEntry(state: .fullyPresent, offset: at)
                    next = at.advanced(byMegabytes: blockSize / Layout.MiB)
                }
                transaction.batEntries.append((newGeometry.payloadIndex(block: block), entry))
            }
        }
        // BAT sectors (in the region that will be current), the size item, the region table: one entry.
        transaction.batRegionOffset = batRegion.fileOffset
        transaction.clearedBATEntries = geometry.totalEntries..<max(geometry.totalEntries, newGeometry.totalEntries)
        var w = ByteWriter()
        VirtualDiskSize(newSize).encode(into: &w)
        transaction.trailingPages = try metadataItemPages(KnownGUID.virtualDiskSize, w.bytes)
        let oldBAT = layout.batRegion
        transaction.layoutChanges.append { [batRegion] layout in
            layout.virtualDiskSize = newSize
            layout.geometry = newGeometry
            layout.batEntriesUsed = newGeometry.totalEntries
            if batRegion != oldBAT {
                layout.batRegion = batRegion
                layout.regionTable.entries = layout.regionTable.entries.map { $0.guid == KnownGUID.batRegion ? batRegion : $0 }
            }
        }
        try commit(transaction)
        if batRegion != oldBAT { try storage.discard(offset: oldBAT.fileOffset, length: UInt64(oldBAT.length)) }
        for offset in released { try storage.discard(offset: offset, length: blockSize) }
    }

    /// Copies the BAT into a new, larger region at the end of the file (not yet referenced, so
    /// written directly and flushed before the region table that points at it is logged).
    private func relocateBAT(minimumBytes: UInt64) throws(VHDXError) -> RegionTableEntry {
        guard let length = minimumBytes.roundedUp(to: Layout.MiB), length <= UInt64(UInt32.max) / Layout.MiB * Layout.MiB else {
            throw VHDXError(.invalidArgument, "the BAT would need \(minimumBytes) bytes", path: storage.name)
        }
        let offset = session.reserve(length)
        try storage.resize(to: max(try storage.size(), offset + length))
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
}
