/// Region table, [MS-VHDX] 2.2.3; two copies at 192 KiB and 256 KiB, 64 KiB each.
///
/// | Off | Size | Field      | Rule                                           |
/// |-----|------|------------|------------------------------------------------|
/// | 0   | 4    | Signature  | "regi"                                         |
/// | 4   | 4    | Checksum   | CRC-32C over the whole 64 KiB, this field zero |
/// | 8   | 4    | EntryCount | <= 2047                                        |
/// | 12  | 4    | Reserved   | 0                                              |
/// | 16  | 32×n | Entries    | RegionTableEntry                               |
public struct RegionTable: Equatable, Sendable {
    public static let encodedSize = 65536
    public var checksum: UInt32
    public var reserved: UInt32
    public var entries: [RegionTableEntry]

    public init(entries: [RegionTableEntry]) {
        checksum = 0
        reserved = 0
        self.entries = entries
    }

    public init(parsing r: inout ByteReader) throws(FormatError) {
        try r.expectSignature(Signature.regionTable)
        checksum = try r.readUInt32("checksum")
        let countOffset = r.fileOffset
        let count = try r.readUInt32("entryCount")
        guard count <= UInt32(Layout.maxRegionEntries) else {
            throw FormatError(.outOfRange, "region table", field: "entryCount", at: countOffset,
                              "\(count) entries, at most \(Layout.maxRegionEntries) allowed")
        }
        reserved = try r.readUInt32("reserved")
        var e: [RegionTableEntry] = []
        for _ in 0..<count { e.append(try RegionTableEntry(parsing: &r)) }
        entries = e
    }

    public mutating func encode() -> [UInt8] {
        var w = ByteWriter(capacity: RegionTable.encodedSize)
        w.write(Signature.regionTable)
        w.write(UInt32(0))
        w.write(UInt32(entries.count))
        w.write(reserved)
        for e in entries { e.encode(into: &w) }
        w.pad(to: RegionTable.encodedSize)
        checksum = CRC32C.checksum(w.bytes)
        w.set(checksum, at: 4)
        return w.bytes
    }

    /// Decodes a 64 KiB table and checks signature, checksum and the entry rules.
    public static func decodeValid(_ raw: [UInt8], at fileOffset: UInt64) throws(FormatError) -> RegionTable {
        var r = ByteReader(raw, base: fileOffset, structure: "region table")
        let t = try RegionTable(parsing: &r)
        let computed = CRC32C.checksum(raw, zeroingFieldAt: 4)
        guard computed == t.checksum else {
            throw FormatError(.badChecksum, "region table", field: "checksum", at: fileOffset + 4,
                              "stored 0x\(String(t.checksum, radix: 16)), computed 0x\(String(computed, radix: 16))")
        }
        if let problem = t.violations(tableOffset: fileOffset).first { throw problem }
        return t
    }

    /// Every rule the entries break (unique GUIDs, 1 MiB alignment, at/after 1 MiB, no overlaps,
    /// one BAT and one metadata region, no unknown required region); empty when usable.
    public func violations(tableOffset: UInt64) -> [FormatError] {
        var out: [FormatError] = []
        var seen = Set<GUID>()
        for (i, e) in entries.enumerated() {
            let at = tableOffset + 16 + UInt64(i) * 32
            let name = KnownGUID.regionName(e.guid)
            if !seen.insert(e.guid).inserted {
                out.append(FormatError(.inconsistent, "region table", field: "entries[\(i)].guid", at: at, "\(name) region listed twice"))
            }
            if !e.fileOffset.isMultiple(of: Layout.MiB) || !UInt64(e.length).isMultiple(of: Layout.MiB) {
                out.append(FormatError(.misaligned, "region table", field: "entries[\(i)]", at: at,
                                       "\(name) region at \(e.fileOffset) length \(e.length) is not 1 MiB-aligned"))
            }
            if e.fileOffset < Layout.headerSectionSize {
                out.append(FormatError(.outOfRange, "region table", field: "entries[\(i)].fileOffset", at: at + 16,
                                       "\(name) region at \(e.fileOffset) lies in the header section"))
            }
            if e.fileOffset.addingReportingOverflow(UInt64(e.length)).overflow {
                out.append(FormatError(.outOfRange, "region table", field: "entries[\(i)]", at: at, "\(name) region runs past the largest file offset"))
            }
            if e.length == 0 {
                out.append(FormatError(.outOfRange, "region table", field: "entries[\(i)].length", at: at + 24, "\(name) region has length 0"))
            }
            if e.flags & ~1 != 0 {
                out.append(FormatError(.reservedNonZero, "region table", field: "entries[\(i)].required", at: at + 28,
                                       "reserved flag bits 0x\(String(e.flags, radix: 16))"))
            }
            if e.isRequired && e.guid != KnownGUID.batRegion && e.guid != KnownGUID.metadataRegion {
                out.append(FormatError(.unsupported, "region table", field: "entries[\(i)].guid", at: at,
                                       "required region {\(e.guid)} is not one this implementation knows"))
            }
            for (j, f) in entries.enumerated() where j < i {
                if e.fileOffset < f.end && f.fileOffset < e.end {
                    out.append(FormatError(.inconsistent, "region table", field: "entries[\(i)]", at: at,
                                           "\(name) region [\(e.fileOffset), \(e.end)) overlaps \(KnownGUID.regionName(f.guid)) region [\(f.fileOffset), \(f.end))"))
                }
            }
        }
        for known in [KnownGUID.batRegion, KnownGUID.metadataRegion] where !seen.contains(known) {
            out.append(FormatError(.inconsistent, "region table", at: tableOffset, "no \(KnownGUID.regionName(known)) region"))
        }
        return out
    }

    public func entry(_ guid: GUID) -> RegionTableEntry? { entries.first { $0.guid == guid } }
}
