import VHDXFormat

/// What a `ChangeObserver` may do to the image: keep 4 KiB pages of its own in a non-required
/// region of its own, changed only through the log, atomically with the change they describe.
extension VHDXFile {
    /// Queues pages to be committed with the current change's own metadata (the same log
    /// entry), or, when the change writes data in place or needs no metadata, in an entry of
    /// their own before that data is written. Each page must be 4 KiB, 4 KiB-aligned and lie
    /// inside a region that is neither the BAT nor the metadata region. Pages are committed in
    /// the order staged (a page staged again moves to the end): when a large set must be split
    /// over several log entries, what the observer stages last (its header) lands last.
    package func stageObserverPages(_ pages: [(fileOffset: UInt64, bytes: [UInt8])]) throws(VHDXError) {
        try requireWritable()
        for p in pages {
            guard p.bytes.count == 4096, p.fileOffset % 4096 == 0, let region = ownRegion(containing: p.fileOffset) else {
                throw VHDXError(.invalidArgument, "an observer page at \(p.fileOffset) (\(p.bytes.count) bytes) is not a 4 KiB page of an observer region", path: storage.name, at: p.fileOffset)
            }
            _ = region
            session.stage(p)
        }
    }

    /// Stages `pages` and commits them now, through the log.
    package func commitObserverPages(_ pages: [(fileOffset: UInt64, bytes: [UInt8])]) throws(VHDXError) {
        try stageObserverPages(pages)
        try commitStagedPages()
    }

    /// The region holding `fileOffset`, if it is one an observer may write (not BAT, not metadata).
    func ownRegion(containing fileOffset: UInt64) -> RegionTableEntry? {
        layout.regionTable.entries.first { r in
            r.guid != KnownGUID.batRegion && r.guid != KnownGUID.metadataRegion && fileOffset >= r.fileOffset && fileOffset < r.end
        }
    }

    /// Stops telling the observer (its region is going away); staged pages are dropped.
    package func detachObserver() {
        observer = nil
        session.dropStagedPages()
    }

    /// The region with `guid`, if the image has one.
    package func region(_ guid: GUID) -> RegionTableEntry? { layout.regionTable.entry(guid) }

    /// Reads a page of the image's metadata as an open sees it (through a replayed log).
    package func readMetadataPage(at fileOffset: UInt64, count: Int = 4096) throws(VHDXError) -> [UInt8] {
        try io.read(count: count, at: fileOffset)
    }

    /// Adds a non-required region of `length` bytes (a multiple of 1 MiB) at the end of the
    /// file, holding `initialPages` and zeros elsewhere: the pages and both region-table copies
    /// go through the log, the tables last, so a crash leaves either no region (the space
    /// unreferenced) or the whole region with its content.
    package func addRegion(_ guid: GUID, length: UInt64, initialPages: [(fileOffset: UInt64, bytes: [UInt8])]) throws(VHDXError) -> RegionTableEntry {
        try requireWritable()
        guard layout.regionTable.entry(guid) == nil else {
            throw VHDXError(.invalidArgument, "the image already has region {\(guid)}", path: storage.name)
        }
        guard length > 0, length % Layout.MiB == 0, length <= UInt64(UInt32.max) / Layout.MiB * Layout.MiB else {
            throw VHDXError(.invalidArgument, "a region of \(length) bytes is not a multiple of 1 MiB below 4 GiB", path: storage.name)
        }
        guard layout.regionTable.entries.count < 2047 else {
            throw VHDXError(.unsupported, "the region table is full", path: storage.name)
        }
        try commitStagedPages()
        let offset = try allocate(length)
        let entry = RegionTableEntry(guid: guid, fileOffset: offset.bytes, length: UInt32(length), required: false)
        var transaction = MetadataTransaction()
        for p in initialPages {
            guard p.bytes.count == 4096, p.fileOffset % 4096 == 0, p.fileOffset < length else {
                throw VHDXError(.invalidArgument, "an initial page at region offset \(p.fileOffset) is not a 4 KiB page inside the region", path: storage.name)
            }
            transaction.trailingPages.append(.data(fileOffset: offset.bytes + p.fileOffset, bytes: p.bytes))
        }
        var table = layout.regionTable
        table.entries.append(entry)
        transaction.trailingPages += regionTablePages(table)
        transaction.layoutChanges.append { $0.regionTable = table }
        try commit(transaction)
        return entry
    }

    /// Removes the non-required region `guid` from both region tables (through the log) and
    /// gives its space back.
    package func removeRegion(_ guid: GUID) throws(VHDXError) {
        try requireWritable()
        guard let entry = layout.regionTable.entry(guid), !entry.isRequired,
              guid != KnownGUID.batRegion, guid != KnownGUID.metadataRegion else {
            throw VHDXError(.invalidArgument, "the image has no removable region {\(guid)}", path: storage.name)
        }
        session.dropStagedPages(in: entry.fileOffset..<entry.end)
        var table = layout.regionTable
        table.entries.removeAll { $0.guid == guid }
        var transaction = MetadataTransaction(pages: regionTablePages(table))
        transaction.layoutChanges.append { $0.regionTable = table }
        try commit(transaction)
        try storage.discard(offset: entry.fileOffset, length: UInt64(entry.length))
    }
}
