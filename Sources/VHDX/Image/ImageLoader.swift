import VHDXFormat

/// Everything known about an image after its header section, log and metadata are decoded.
package struct ImageLayout: Sendable {
    package var fileIdentifier: FileIdentifier
    package var header: Header
    package var headerSlot: Int
    package var regionTable: RegionTable
    /// 0 or 1: the region table copy in use.
    package var regionTableCopy: Int
    package var metadataTable: MetadataTable
    package var fileParameters: FileParameters
    package var virtualDiskSize: UInt64
    package var virtualDiskID: GUID
    package var logicalSectorSize: UInt32
    package var physicalSectorSize: UInt32
    package var parentLocator: ParentLocator?
    package var geometry: BATGeometry
    package var batRegion: RegionTableEntry
    package var metadataRegion: RegionTableEntry
    /// The BAT entries the region holds room for (at least `geometry.totalEntries`).
    package var batEntriesUsed: UInt64
}

/// The pending log found at open, and what was done with it.
public struct LogReplayInfo: Sendable {
    /// Log entries in the active sequence.
    public var entryCount: Int
    /// Data and zero descriptors they carry.
    public var updateCount: Int
    /// The sequence's first entry's sequence number.
    public var firstSequenceNumber: UInt64
    /// Its last entry's sequence number.
    public var lastSequenceNumber: UInt64
    /// True when applied to an in-memory overlay only (read-only open); false when written.
    public var inMemory: Bool

    init(_ sequence: LogSequence, inMemory: Bool) {
        entryCount = sequence.entries.count
        updateCount = sequence.updateCount
        firstSequenceNumber = sequence.entries.first!.entry.header.sequenceNumber
        lastSequenceNumber = sequence.head.sequenceNumber
        self.inMemory = inMemory
    }
}

/// Decodes an image's structures in the order of docs/vhdx-format.md §10, reporting every problem
/// it can see as a `Finding` and throwing only when it cannot go on. Open and check share it, so
/// what `check` reports is exactly what an open sees.
struct ImageLoader {
    let storage: Storage
    var findings: [Finding] = []

    init(storage: Storage) { self.storage = storage }

    mutating func note(_ f: Finding) { findings.append(f) }

    /// The error that stops an open at `f`: a refusal by rule when that is what was found,
    /// corruption otherwise.
    private func fatal(_ f: Finding) -> VHDXError {
        VHDXError(f.code == .unsupported ? .unsupported : .corrupt,
                  "\(f.structure): \(f.message)", path: storage.name, at: f.fileOffset)
    }

    /// File identifier and headers; returns the current header and its slot. `forWriting`: the
    /// log must lie inside the file even when it is empty, since writes will put entries there.
    mutating func loadHeaders(forWriting: Bool = false) throws(VHDXError) -> (FileIdentifier, HeaderChoice) {
        let size = try storage.size()
        guard size >= Layout.headerSectionSize else {
            let f = Finding(.corruption, .truncated, "file", at: size, "the file is \(size) bytes, shorter than the 1 MiB header section", openCanContinue: false)
            note(f)
            throw fatal(f)
        }
        let idBytes = try storage.read(count: FileIdentifier.encodedSize, at: 0)
        var r = ByteReader(idBytes, base: 0, structure: "file identifier")
        let id: FileIdentifier
        do { id = try FileIdentifier(parsing: &r) } catch {
            let f = Finding(error)
            note(f)
            throw VHDXError(.corrupt, "not a VHDX file: \(error)", path: storage.name, at: 0, cause: error)
        }
        let raw = [try storage.read(count: Header.encodedSize, at: Layout.headerOffsets[0]),
                   try storage.read(count: Header.encodedSize, at: Layout.headerOffsets[1])]
        let choice: HeaderChoice
        do { choice = try HeaderChoice(raw: raw) } catch {
            let f = Finding(error)
            note(f)
            throw fatal(f)
        }
        for case let p? in choice.problems { note(Finding(p, repairable: true, openCanContinue: true)) }
        let h = choice.current
        if h.reserved.contains(where: { $0 != 0 }) {
            note(Finding(.corruption, .reservedNonZero, "header", at: Layout.headerOffsets[choice.slot] + 80, "reserved bytes are not zero"))
        }
        do { try h.validateLogLocation() } catch {
            let f = Finding(error)
            note(f)
            throw fatal(f)
        }
        if h.logLength > 0 && h.logOffset + UInt64(h.logLength) > size {
            let f = Finding(.corruption, .outOfBounds, "log", at: h.logOffset,
                            "the log [\(h.logOffset), \(h.logOffset + UInt64(h.logLength))) runs past the end of the file (\(size) bytes)",
                            openCanContinue: h.logGUID.isZero)
            note(f)
            if !f.openCanContinue { throw fatal(f) }
            if forWriting {
                throw VHDXError(.corrupt, "log: \(f.message); refusing to write (new log entries would land outside the file)",
                                path: storage.name, at: h.logOffset)
            }
        }
        return (id, choice)
    }

    /// The active log sequence, if the header says the log is not empty.
    mutating func loadLog(header: Header) throws(VHDXError) -> LogSequence? {
        do {
            return try LogSequence.findActive(in: storage, header: header, fileSize: try storage.size())
        } catch {
            note(Finding(.corruption, Finding.Code(error, otherwise: .badLog), "log", at: error.fileOffset ?? header.logOffset, error.message,
                         openCanContinue: false))
            throw error
        }
    }

    /// Region tables, metadata and BAT geometry, read through `io` (the file or a replay overlay).
    mutating func loadLayout(io: Storage, identifier: FileIdentifier, choice: HeaderChoice) throws(VHDXError) -> ImageLayout {
        let fileSize = try io.size()
        // Region tables: copy 1, falling back to copy 2.
        var tables: [RegionTable?] = []
        var raws: [[UInt8]] = []
        for off in Layout.regionTableOffsets {
            let raw = try io.read(count: RegionTable.encodedSize, at: off)
            raws.append(raw)
            do { tables.append(try RegionTable.decodeValid(raw, at: off)) } catch {
                tables.append(nil)
                let unsupported = error.code == .unsupported
                note(Finding(error, repairable: !unsupported, openCanContinue: true))
            }
        }
        guard let copy = tables.firstIndex(where: { $0 != nil }), let table = tables[copy] else {
            let f = Finding(.corruption, .noValidCopy, "region table", at: Layout.regionTableOffsets[0], "neither region table copy is valid", openCanContinue: false)
            note(f)
            // An unknown required region is a refusal, not corruption.
            if let refusal = findings.last(where: { $0.code == .unsupported }) {
                throw VHDXError(.unsupported, refusal.message, path: storage.name)
            }
            throw fatal(f)
        }
        if copy == 1 {
            note(Finding(.notice, .damagedCopy, "region table", at: Layout.regionTableOffsets[0], "copy 1 is damaged; using copy 2", repairable: true))
        } else if tables[1] != nil && raws[0] != raws[1] {
            note(Finding(.corruption, .copiesDiffer, "region table", at: Layout.regionTableOffsets[1], "the two valid copies differ; using copy 1", repairable: true))
        }
        let bat = table.entry(KnownGUID.batRegion)!
        let meta = table.entry(KnownGUID.metadataRegion)!
        let header = choice.current
        for e in table.entries {
            let name = KnownGUID.regionName(e.guid)
            if e.end > fileSize {
                note(Finding(.corruption, .outOfBounds, "region table", at: e.fileOffset,
                             "\(name) region [\(e.fileOffset), \(e.end)) runs past the end of the file (\(fileSize) bytes)",
                             openCanContinue: e.guid != KnownGUID.batRegion && e.guid != KnownGUID.metadataRegion))
            }
            if header.logLength > 0 && e.fileOffset < header.logOffset + UInt64(header.logLength) && header.logOffset < e.end {
                note(Finding(.corruption, .overlap, "region table", at: e.fileOffset, "\(name) region overlaps the log", openCanContinue: false))
            }
        }
        if let f = findings.first(where: { !$0.openCanContinue }) { throw fatal(f) }

        // Metadata table and items.
        let metaTableBytes = try io.read(count: MetadataTable.encodedSize, at: meta.fileOffset)
        var r = ByteReader(metaTableBytes, base: meta.fileOffset, structure: "metadata table")
        let mt: MetadataTable
        do { mt = try MetadataTable(parsing: &r) } catch {
            let f = Finding(error)
            note(f)
            throw fatal(f)
        }
        for v in mt.violations(regionLength: UInt64(meta.length), regionOffset: meta.fileOffset) {
            note(Finding(v, openCanContinue: v.code == .reservedNonZero))
        }
        let known: Set<GUID> = [KnownGUID.fileParameters, KnownGUID.virtualDiskSize, KnownGUID.virtualDiskID,
                                KnownGUID.logicalSectorSize, KnownGUID.physicalSectorSize, KnownGUID.parentLocator]
        for (i, e) in mt.entries.enumerated() where e.isRequired && !(known.contains(e.itemID) && !e.isUser) {
            note(Finding(.corruption, .unsupported, "metadata table", at: meta.fileOffset + 32 + UInt64(i) * 32,
                         "unsupported: required metadata item {\(e.itemID)} is not one this implementation knows", openCanContinue: false))
        }
        if let f = findings.first(where: { !$0.openCanContinue }) { throw fatal(f) }

        func item(_ id: GUID, minLength: Int) throws(VHDXError) -> ByteReader? {
            guard let e = mt.entry(id) else { return nil }
            let name = KnownGUID.metadataItemName(id)
            let at = meta.fileOffset + UInt64(e.offset)
            guard Int(e.length) >= minLength else {
                let f = Finding(.corruption, .truncated, "metadata item", at: at, "\(name) is \(e.length) bytes, needs \(minLength)", openCanContinue: false)
                note(f)
                throw fatal(f)
            }
            if minLength > 0 && Int(e.length) != minLength && id != KnownGUID.parentLocator {
                note(Finding(.corruption, .outOfRange, "metadata item", at: at, "\(name) is \(e.length) bytes; the format defines \(minLength)"))
            }
            return ByteReader(try io.read(count: Int(e.length), at: at), base: at, structure: name)
        }
        func required(_ id: GUID, _ n: Int) throws(VHDXError) -> ByteReader {
            guard let r = try item(id, minLength: n) else {
                let f = Finding(.corruption, .missing, "metadata table", at: meta.fileOffset,
                                "required item \(KnownGUID.metadataItemName(id)) is missing", openCanContinue: false)
                note(f)
                throw fatal(f)
            }
            return r
        }
        func parse<T>(_ body: () throws(FormatError) -> T) throws(VHDXError) -> T {
            do { return try body() } catch {
                let f = Finding(error)
                note(f)
                throw fatal(f)
            }
        }
        var fpR = try required(KnownGUID.fileParameters, FileParameters.encodedSize)
        var vsR = try required(KnownGUID.virtualDiskSize, VirtualDiskSize.encodedSize)
        var idR = try required(KnownGUID.virtualDiskID, VirtualDiskID.encodedSize)
        var lsR = try required(KnownGUID.logicalSectorSize, SectorSize.encodedSize)
        var psR = try required(KnownGUID.physicalSectorSize, SectorSize.encodedSize)
        let fp = try parse { () throws(FormatError) in try FileParameters(parsing: &fpR) }
        let vs = try parse { () throws(FormatError) in try VirtualDiskSize(parsing: &vsR) }
        let vid = try parse { () throws(FormatError) in try VirtualDiskID(parsing: &idR) }
        let lss = try parse { () throws(FormatError) in try SectorSize(parsing: &lsR, item: "logical sector size") }
        let pss = try parse { () throws(FormatError) in try SectorSize(parsing: &psR, item: "physical sector size") }
        guard vs.bytes % UInt64(lss.bytes) == 0 else {
            let f = Finding(.corruption, .misaligned, "virtual disk size", at: vsR.base,
                            "\(vs.bytes) bytes is not a multiple of the \(lss.bytes)-byte logical sector", openCanContinue: false)
            note(f)
            throw fatal(f)
        }
        var locator: ParentLocator?
        if var plR = try item(KnownGUID.parentLocator, minLength: 20) {
            let pl = try parse { () throws(FormatError) in try ParentLocator(parsing: &plR) }
            if pl.locatorType != KnownGUID.parentLocatorTypeVHDX {
                let f = Finding(.corruption, .unsupported, "parent locator", at: plR.base, "unsupported: locator type {\(pl.locatorType)}", openCanContinue: false)
                note(f)
                throw fatal(f)
            }
            locator = pl
        }
        if fp.hasParent != (locator != nil) {
            let f = Finding(.corruption, .inconsistent, "file parameters", at: fpR.base,
                            fp.hasParent ? "HasParent is set but there is no parent locator" : "a parent locator is present but HasParent is clear",
                            openCanContinue: !fp.hasParent)
            note(f)
            if !f.openCanContinue { throw fatal(f) }
        }
        if let locator, locator.parentLinkage == nil {
            note(Finding(.corruption, .missing, "parent locator", at: plROffset(mt, meta), "parent_linkage is missing or not a GUID", openCanContinue: true))
        }
        let geometry = BATGeometry(virtualDiskSize: vs.bytes, blockSize: fp.blockSize, logicalSectorSize: lss.bytes, hasParent: fp.hasParent)
        guard geometry.minimumTableBytes <= UInt64(bat.length) else {
            let f = Finding(.corruption, .truncated, "BAT", at: bat.fileOffset,
                            "the region holds \(bat.length) bytes but \(geometry.totalEntries) entries need \(geometry.minimumTableBytes)", openCanContinue: false)
            note(f)
            throw fatal(f)
        }
        return ImageLayout(fileIdentifier: identifier, header: header, headerSlot: choice.slot, regionTable: table,
                           regionTableCopy: copy, metadataTable: mt, fileParameters: fp, virtualDiskSize: vs.bytes,
                           virtualDiskID: vid.guid, logicalSectorSize: lss.bytes, physicalSectorSize: pss.bytes,
                           parentLocator: locator, geometry: geometry, batRegion: bat, metadataRegion: meta,
                           batEntriesUsed: geometry.totalEntries)
    }

    private func plROffset(_ mt: MetadataTable, _ meta: RegionTableEntry) -> UInt64 {
        meta.fileOffset + UInt64(mt.entry(KnownGUID.parentLocator)?.offset ?? 0)
    }
}
