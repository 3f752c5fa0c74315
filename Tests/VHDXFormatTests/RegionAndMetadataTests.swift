import Testing
@testable import VHDXFormat

@Suite("Region table and metadata")
struct RegionAndMetadataTests {
    static func table() -> RegionTable {
        RegionTable(entries: [
            RegionTableEntry(guid: KnownGUID.batRegion, fileOffset: 3 << 20, length: 1 << 20, required: true),
            RegionTableEntry(guid: KnownGUID.metadataRegion, fileOffset: 2 << 20, length: 1 << 20, required: true),
        ])
    }

    @Test func regionTableRoundTrip() throws {
        var t = RegionAndMetadataTests.table()
        let bytes = t.encode()
        #expect(bytes.count == 65536)
        #expect(Array(bytes[16..<32]) == KnownGUID.batRegion.bytes)
        let d = try RegionTable.decodeValid(bytes, at: 196608)
        #expect(d.entries == t.entries)
        var again = d
        #expect(again.encode() == bytes)
    }

    @Test func regionRules() {
        var t = RegionAndMetadataTests.table()
        t.entries[1].fileOffset = (3 << 20) + (1 << 19)
        let v = t.violations(tableOffset: 0)
        #expect(v.contains { $0.code == .misaligned })
        #expect(v.contains { $0.detail.contains("overlaps") })

        t = RegionAndMetadataTests.table()
        t.entries.append(RegionTableEntry(guid: KnownGUID.batRegion, fileOffset: 8 << 20, length: 1 << 20, required: true))
        #expect(t.violations(tableOffset: 0).contains { $0.detail.contains("twice") })

        t = RegionAndMetadataTests.table()
        t.entries.append(RegionTableEntry(guid: .random(), fileOffset: 8 << 20, length: 1 << 20, required: true))
        #expect(t.violations(tableOffset: 0).contains { $0.code == .unsupported })
        // An unknown optional region is carried along, not an error.
        t.entries[2].flags = 0
        #expect(t.violations(tableOffset: 0).isEmpty)

        t = RegionAndMetadataTests.table()
        t.entries.removeFirst()
        #expect(t.violations(tableOffset: 0).contains { $0.detail.contains("no BAT region") })

        t = RegionAndMetadataTests.table()
        t.entries[0].fileOffset = 0
        #expect(t.violations(tableOffset: 0).contains { $0.detail.contains("header section") })
    }

    @Test func regionEntryCountCapped() {
        var t = RegionAndMetadataTests.table()
        var bytes = t.encode()
        bytes[8] = 0x00; bytes[9] = 0x08  // 2048 entries
        var r = ByteReader(bytes, structure: "region table")
        #expect(throws: FormatError(.outOfRange, "region table", field: "entryCount", "")) { try RegionTable(parsing: &r) }
    }

    static func metadata() -> MetadataTable {
        MetadataTable(entries: [
            MetadataTableEntry(itemID: KnownGUID.fileParameters, offset: 65536, length: 8, isVirtualDisk: false, isRequired: true),
            MetadataTableEntry(itemID: KnownGUID.virtualDiskSize, offset: 65544, length: 8, isVirtualDisk: true, isRequired: true),
        ])
    }

    @Test func metadataTableRoundTrip() throws {
        let t = RegionAndMetadataTests.metadata()
        let bytes = t.encode()
        var r = ByteReader(bytes, structure: "metadata table")
        let d = try MetadataTable(parsing: &r)
        #expect(d == t)
        #expect(d.encode() == bytes)
        #expect(d.violations(regionLength: 1 << 20, regionOffset: 0).isEmpty)
    }

    @Test func metadataRules() {
        var t = RegionAndMetadataTests.metadata()
        t.entries[1].offset = 65540  // overlaps File Parameters
        #expect(t.violations(regionLength: 1 << 20, regionOffset: 0).contains { $0.detail.contains("overlaps") })
        t = RegionAndMetadataTests.metadata()
        t.entries[1].offset = (1 << 20) - 4  // runs past the region
        #expect(t.violations(regionLength: 1 << 20, regionOffset: 0).contains { $0.code == .outOfRange })
        t = RegionAndMetadataTests.metadata()
        t.entries[0].offset = 100  // inside the table
        #expect(t.violations(regionLength: 1 << 20, regionOffset: 0).contains { $0.code == .outOfRange })
        t = RegionAndMetadataTests.metadata()
        t.entries[1].flags |= 0x10
        #expect(t.violations(regionLength: 1 << 20, regionOffset: 0).contains { $0.code == .reservedNonZero })
        t = RegionAndMetadataTests.metadata()
        t.entries[1].length = 0
        #expect(t.violations(regionLength: 1 << 20, regionOffset: 0).contains { $0.detail.contains("empty item") })
    }

    static let blockSizeCases: [(UInt32, Bool)] = [
        (1_048_576, true), (2_097_152, true), (268_435_456, true), (536_870_912, false), (524_288, false), (3_145_728, false), (0, false),
    ]

    @Test("block sizes: powers of two in [1 MiB, 256 MiB] only", arguments: blockSizeCases)
    func blockSizes(_ c: (UInt32, Bool)) {
        var w = ByteWriter()
        FileParameters(blockSize: c.0, leaveBlockAllocated: false, hasParent: false).encode(into: &w)
        var r = ByteReader(w.bytes, structure: "fp")
        #expect(((try? FileParameters(parsing: &r)) != nil) == c.1)
    }

    @Test func sectorSizesAndDiskSize() {
        for (v, ok) in [(UInt32(512), true), (4096, true), (1024, false), (0, false)] {
            var w = ByteWriter(); w.write(v)
            var r = ByteReader(w.bytes, structure: "s")
            #expect(((try? SectorSize(parsing: &r, item: "lss")) != nil) == ok)
        }
        for (v, ok) in [(UInt64(64) << 40, true), ((UInt64(64) << 40) + 512, false), (0, false)] {
            var w = ByteWriter(); w.write(v)
            var r = ByteReader(w.bytes, structure: "s")
            #expect(((try? VirtualDiskSize(parsing: &r)) != nil) == ok)
        }
    }

    @Test func parentLocatorRoundTrip() throws {
        let l = ParentLocator(entries: [("parent_linkage", "{ff34003b-11ed-4cf8-a166-b2be05e20b80}"),
                                        ("relative_path", ".\\parent.vhdx")])
        let bytes = l.encode()
        var r = ByteReader(bytes, structure: "pl")
        let d = try ParentLocator(parsing: &r)
        #expect(d == l)
        #expect(d.parentLinkage == GUID(text: "FF34003B-11ED-4CF8-A166-B2BE05E20B80"))
        var bad = bytes
        bad[20 + 4] = 0xFF; bad[20 + 5] = 0xFF  // value offset far past the item
        var r2 = ByteReader(bad, structure: "pl")
        #expect(throws: FormatError.self) { try ParentLocator(parsing: &r2) }
    }
}
