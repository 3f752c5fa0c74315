import VHDXFormat

/// Whole 4 KiB pages of metadata outside the BAT, as a `MetadataTransaction` logs them.
extension VHDXFile {
    /// The 4 KiB sector image(s) of the metadata region with item `id` replaced by `bytes`.
    func metadataItemPages(_ id: GUID, _ bytes: [UInt8]) throws(VHDXError) -> [LogEntry.Update] {
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

    /// Both region-table copies holding `table`.
    func regionTablePages(_ table: RegionTable) -> [LogEntry.Update] {
        var t = table
        let bytes = t.encode()
        return Layout.regionTableOffsets.flatMap { LogEntry.Update.sectors(of: bytes, at: $0) }
    }
}
