import VHDXFormat

extension VHDXFile {
    /// Replaces the parent locator of this differencing image, through the log (reparent,
    /// and the linkage step of a merge). The item is rewritten in place when it fits, otherwise
    /// after the last item of the metadata region; the table entry follows in the same entry.
    /// Not a change to virtual content: DataWriteGuid stays, so this image's own children still
    /// link to it.
    package func setParentLocator(_ locator: ParentLocator) throws(VHDXError) {
        try requireWritable()
        guard diskType == .differencing, let old = layout.metadataTable.entry(KnownGUID.parentLocator) else {
            throw VHDXError(.invalidArgument, "only a differencing image has a parent locator to change", path: storage.name)
        }
        let bytes = locator.encode()
        var table = layout.metadataTable
        var offset = old.offset
        if bytes.count > Int(old.length) {
            let end = table.entries.map { UInt64($0.offset) + UInt64($0.length) }.max() ?? UInt64(MetadataTable.encodedSize)
            let start = max(end, UInt64(MetadataTable.encodedSize))
            guard start + UInt64(bytes.count) <= UInt64(layout.metadataRegion.length) else {
                throw VHDXError(.unsupported, "the new parent locator (\(bytes.count) bytes) does not fit in the metadata region", path: storage.name)
            }
            offset = UInt32(start)
        }
        table.entries = table.entries.map { e in
            guard e.itemID == KnownGUID.parentLocator else { return e }
            var n = e
            n.offset = offset
            n.length = UInt32(bytes.count)
            return n
        }
        let region = layout.metadataRegion.fileOffset
        var pages: [UInt64: [UInt8]] = [:]
        func put(_ data: [UInt8], at fileOffset: UInt64) throws(VHDXError) {
            var i = 0
            while i < data.count {
                let at = fileOffset + UInt64(i)
                let page = at / 4096 * 4096
                if pages[page] == nil { pages[page] = try storage.read(count: 4096, at: page) }
                let n = min(data.count - i, Int(page + 4096 - at))
                pages[page]!.replaceSubrange(Int(at - page)..<Int(at - page) + n, with: data[i..<i + n])
                i += n
            }
        }
        try put(bytes, at: region + UInt64(offset))
        try put(Array(table.encode()[0..<(32 + 32 * table.entries.count)]), at: region)
        var transaction = MetadataTransaction(pages: pages.keys.sorted().map { .data(fileOffset: $0, bytes: pages[$0]!) })
        transaction.layoutChanges.append { layout in
            layout.metadataTable = table
            layout.parentLocator = locator
        }
        try commit(transaction)
    }
}
