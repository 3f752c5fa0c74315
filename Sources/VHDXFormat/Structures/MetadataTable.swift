/// Metadata table, [MS-VHDX] 2.6.1; the first 64 KiB of the metadata region.
///
/// | Off | Size | Field      | Rule     |
/// |-----|------|------------|----------|
/// | 0   | 8    | Signature  | "metadata" |
/// | 8   | 2    | Reserved   | 0        |
/// | 10  | 2    | EntryCount | <= 2047  |
/// | 12  | 20   | Reserved2  | 0        |
/// | 32  | 32×n | Entries    | MetadataTableEntry |
public struct MetadataTable: Equatable, Sendable {
    public static let encodedSize = 65536
    public var reserved: UInt16
    public var reserved2: [UInt8]
    public var entries: [MetadataTableEntry]

    public init(entries: [MetadataTableEntry]) {
        reserved = 0
        reserved2 = [UInt8](repeating: 0, count: 20)
        self.entries = entries
    }

    public init(parsing r: inout ByteReader) throws(FormatError) {
        try r.expectSignature(Signature.metadataTable)
        reserved = try r.readUInt16("reserved")
        let countOffset = r.fileOffset
        let count = try r.readUInt16("entryCount")
        guard Int(count) <= Layout.maxMetadataEntries else {
            throw FormatError(.outOfRange, "metadata table", field: "entryCount", at: countOffset,
                              "\(count) entries, at most \(Layout.maxMetadataEntries) allowed")
        }
        reserved2 = try r.readBytes(20, "reserved2")
        var e: [MetadataTableEntry] = []
        for _ in 0..<count { e.append(try MetadataTableEntry(parsing: &r)) }
        entries = e
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: MetadataTable.encodedSize)
        w.write(Signature.metadataTable)
        w.write(reserved)
        w.write(UInt16(entries.count))
        w.write(reserved2)
        for e in entries { e.encode(into: &w) }
        w.pad(to: MetadataTable.encodedSize)
        return w.bytes
    }

    /// Every rule the table breaks, given the metadata region's length and file offset.
    public func violations(regionLength: UInt64, regionOffset: UInt64) -> [FormatError] {
        var out: [FormatError] = []
        if reserved != 0 || reserved2.contains(where: { $0 != 0 }) {
            out.append(FormatError(.reservedNonZero, "metadata table", field: "reserved", at: regionOffset + 8, "reserved header bytes are not zero"))
        }
        var seen = Set<[UInt8]>()
        var ranges: [(Int, UInt64, UInt64)] = []
        let userCount = entries.filter(\.isUser).count
        if userCount > Layout.maxUserMetadataEntries {
            out.append(FormatError(.outOfRange, "metadata table", field: "entryCount", at: regionOffset + 10,
                                   "\(userCount) user entries, at most \(Layout.maxUserMetadataEntries)"))
        }
        for (i, e) in entries.enumerated() {
            let at = regionOffset + 32 + UInt64(i) * 32
            let name = KnownGUID.metadataItemName(e.itemID)
            if !seen.insert(e.itemID.bytes + [e.isUser ? 1 : 0]).inserted {
                out.append(FormatError(.inconsistent, "metadata table", field: "entries[\(i)].itemID", at: at, "\(name) listed twice"))
            }
            if e.flags & ~7 != 0 || e.reserved2 != 0 {
                out.append(FormatError(.reservedNonZero, "metadata table", field: "entries[\(i)].flags", at: at + 24, "\(name): reserved bits set"))
            }
            if e.length == 0 {
                if e.offset != 0 {
                    out.append(FormatError(.inconsistent, "metadata table", field: "entries[\(i)].offset", at: at + 16, "\(name): empty item with offset \(e.offset)"))
                }
                continue
            }
            if e.length > Layout.maxMetadataItemLength {
                out.append(FormatError(.outOfRange, "metadata table", field: "entries[\(i)].length", at: at + 20, "\(name): length \(e.length) exceeds 1 MiB"))
            }
            let start = UInt64(e.offset), end = UInt64(e.offset) + UInt64(e.length)
            if start < UInt64(MetadataTable.encodedSize) || end > regionLength {
                out.append(FormatError(.outOfRange, "metadata table", field: "entries[\(i)].offset", at: at + 16,
                                       "\(name): item [\(start), \(end)) is outside [65536, \(regionLength)) of the metadata region"))
            }
            for (j, s, t) in ranges where start < t && s < end {
                out.append(FormatError(.inconsistent, "metadata table", field: "entries[\(i)]", at: at,
                                       "\(name) [\(start), \(end)) overlaps entry \(j) [\(s), \(t))"))
            }
            ranges.append((i, start, end))
        }
        return out
    }

    public func entry(_ id: GUID, user: Bool = false) -> MetadataTableEntry? {
        entries.first { $0.itemID == id && $0.isUser == user }
    }
}
