import VHDXFormat

/// Writes the structures of a brand-new image straight to storage: file identifier, both
/// headers, both region tables, the metadata region and the BAT. Used for files that are not
/// visible yet (a temporary file renamed into place once complete and flushed), so no log is
/// needed: a crash leaves only a temporary file behind.
struct ImageBuilder {
    let storage: Storage
    let options: CreateOptions
    let plan: PlannedLayout
    var parentLocator: ParentLocator? = nil
    /// The new image's DataWriteGuid (a record kept inside the image may name it).
    var dataWriteGUID = GUID.random()

    init(storage: Storage, options: CreateOptions, plan: PlannedLayout) {
        self.storage = storage
        self.options = options
        self.plan = plan
    }

    /// Writes everything but the BAT's entries (the BAT region is left as the caller wrote it, or
    /// zeros: every entry PAYLOAD_BLOCK_NOT_PRESENT with offset 0).
    func writeStructures() throws(VHDXError) {
        var w = ByteWriter()
        FileIdentifier(creator: options.creator).encode(into: &w)
        try storage.write(w.bytes, at: 0)

        let dataWrite = dataWriteGUID
        for (i, off) in Layout.headerOffsets.enumerated() {
            var h = Header(sequenceNumber: UInt64(i), fileWriteGUID: .random(), dataWriteGUID: dataWrite, logGUID: .zero,
                           logLength: plan.logLength, logOffset: plan.logOffset)
            try storage.write(h.encode(), at: off)
        }
        var table = RegionTable(entries: [
            RegionTableEntry(guid: KnownGUID.batRegion, fileOffset: plan.batOffset, length: plan.batLength, required: true),
            RegionTableEntry(guid: KnownGUID.metadataRegion, fileOffset: plan.metadataOffset, length: plan.metadataLength, required: true),
        ])
        let tableBytes = table.encode()
        for off in Layout.regionTableOffsets { try storage.write(tableBytes, at: off) }
        try storage.write(metadataRegion(), at: plan.metadataOffset)
        // The log region reads as zeros: no entry of any LogGuid.
        try storage.write([UInt8](repeating: 0, count: Int(plan.logLength)), at: plan.logOffset)
    }

    /// The 1 MiB metadata region: table, then the items from 64 KiB on, each at its own
    /// 4 KiB-aligned slot.
    func metadataRegion() -> [UInt8] {
        var items: [(GUID, [UInt8], Bool, Bool)] = []  // id, bytes, isVirtualDisk, isRequired
        var w = ByteWriter()
        FileParameters(blockSize: options.blockSize, leaveBlockAllocated: options.fixed, hasParent: parentLocator != nil).encode(into: &w)
        items.append((KnownGUID.fileParameters, w.bytes, false, true))
        w = ByteWriter(); VirtualDiskSize(options.virtualSize).encode(into: &w)
        items.append((KnownGUID.virtualDiskSize, w.bytes, true, true))
        w = ByteWriter(); SectorSize(options.logicalSectorSize).encode(into: &w)
        items.append((KnownGUID.logicalSectorSize, w.bytes, true, true))
        w = ByteWriter(); SectorSize(options.physicalSectorSize).encode(into: &w)
        items.append((KnownGUID.physicalSectorSize, w.bytes, true, true))
        w = ByteWriter(); VirtualDiskID(options.virtualDiskID).encode(into: &w)
        items.append((KnownGUID.virtualDiskID, w.bytes, true, true))
        if let parentLocator { items.append((KnownGUID.parentLocator, parentLocator.encode(), false, true)) }

        var region = [UInt8](repeating: 0, count: Int(plan.metadataLength))
        var entries: [MetadataTableEntry] = []
        var offset = MetadataTable.encodedSize
        for (id, bytes, vd, req) in items {
            entries.append(MetadataTableEntry(itemID: id, offset: UInt32(offset), length: UInt32(bytes.count), isVirtualDisk: vd, isRequired: req))
            region.replaceSubrange(offset..<offset + bytes.count, with: bytes)
            offset += (bytes.count + 4095) / 4096 * 4096
        }
        let table = MetadataTable(entries: entries).encode()
        region.replaceSubrange(0..<table.count, with: table)
        return region
    }

    /// Writes BAT entries (index, entry) in one pass over the region, 1 MiB at a time.
    func writeBAT(_ entryAt: (UInt64) throws(VHDXError) -> BATEntry) throws(VHDXError) {
        let total = plan.geometry.totalEntries
        var index: UInt64 = 0
        let perChunk: UInt64 = 128 * 1024
        while index < total {
            let n = min(perChunk, total - index)
            var w = ByteWriter(capacity: Int(n) * 8)
            for i in index..<index + n { try entryAt(i).encode(into: &w) }
            try storage.write(w.bytes, at: plan.batOffset + index * 8)
            index += n
        }
    }
}

extension BATEntry {
    /// A FULLY_PRESENT entry for a block a writer placed at `offset`, which its layout keeps
    /// 1 MiB-aligned; a misaligned one is an internal error, thrown rather than written with
    /// its low bits dropped.
    static func dataBlock(at offset: UInt64) throws(VHDXError) -> BATEntry {
        guard let aligned = MiBOffset(bytes: offset) else {
            throw VHDXError(.invalidArgument, "internal: a block placed at \(offset), not on a 1 MiB boundary")
        }
        return BATEntry(state: .fullyPresent, offset: aligned)
    }
}
