import Testing
@testable import VHDXFormat

@Suite("BAT arithmetic and log entries")
struct BATAndLogTests {
    static let ratios: [(UInt32, UInt32, UInt64)] = [
        (512, 1_048_576, 4096), (512, 33_554_432, 128), (512, 268_435_456, 16),
        (4096, 1_048_576, 32768), (4096, 33_554_432, 1024), (4096, 268_435_456, 128),
    ]

    @Test("chunk ratio table", arguments: ratios)
    func chunkRatio(_ c: (UInt32, UInt32, UInt64)) {
        let g = BATGeometry(virtualDiskSize: 1 << 30, blockSize: c.1, logicalSectorSize: c.0, hasParent: false)
        #expect(g.chunkRatio == c.2)
    }

    @Test func workedExamples() {
        // 10 GiB, LSS 512, 32 MiB blocks: 320 data blocks, CR 128, 3 SB blocks.
        let dyn = BATGeometry(virtualDiskSize: 10 << 30, blockSize: 32 << 20, logicalSectorSize: 512, hasParent: false)
        #expect(dyn.dataBlockCount == 320 && dyn.sectorBitmapBlockCount == 3)
        #expect(dyn.totalEntries == 322)
        let diff = BATGeometry(virtualDiskSize: 10 << 30, blockSize: 32 << 20, logicalSectorSize: 512, hasParent: true)
        #expect(diff.totalEntries == 387)
        #expect(dyn.payloadIndex(block: 200) == 201)
        #expect(dyn.sectorBitmapIndex(chunk: 1) == 257)
        #expect(dyn.classify(index: 128) == (true, 0))
        #expect(dyn.classify(index: 129) == (false, 128))
        // A full last chunk has no trailing SB slot in a dynamic file.
        let full = BATGeometry(virtualDiskSize: 4 << 30, blockSize: 32 << 20, logicalSectorSize: 512, hasParent: false)
        #expect(full.totalEntries == 128)
        // 64 TiB with 1 MiB blocks: the largest table.
        let big = BATGeometry(virtualDiskSize: 64 << 40, blockSize: 1 << 20, logicalSectorSize: 512, hasParent: false)
        #expect(big.totalEntries == (64 << 20) + (64 << 20) / 4096 - 1)
    }

    @Test func batEntryBits() {
        let e = BATEntry(state: 6, fileOffsetMB: 5)
        #expect(e.raw == 6 | (5 << 20))
        #expect(e.fileOffset == 5 << 20 && e.state == 6 && e.reservedBits == 0)
        #expect(BATEntry(raw: 0x8).reservedBits == 1)
    }

    @Test func batEntryTypedConstructorsAndBytes() throws {
        // Offsets are bytes on a 1 MiB boundary; a misaligned one is refused, never truncated.
        #expect(MiBOffset(bytes: (5 << 20) + 4096) == nil)
        let at = try #require(MiBOffset(bytes: 5 << 20))
        let data = BATEntry(state: .fullyPresent, offset: at)
        #expect(data == BATEntry(state: 6, fileOffsetMB: 5) && data.offset == at && data.fileOffset == 5 << 20)
        #expect(BATEntry(state: .partiallyPresent, offset: at.advanced(byMegabytes: 2)).raw == 7 | (7 << 20))
        #expect(BATEntry(sectorBitmap: .present, offset: at) == BATEntry(state: 6, fileOffsetMB: 5))
        #expect(BATEntry.notPresent.raw == 0 && BATEntry.undefined.raw == 1 && BATEntry.zero.raw == 2 && BATEntry.unmapped.raw == 3)
        let dataless: [BATEntry] = [.notPresent, .undefined, .zero, .unmapped]
        #expect(dataless.filter { !$0.isPlainDataless }.isEmpty)
        #expect(!data.isPlainDataless && !BATEntry(raw: 0x8).isPlainDataless)

        // Eight little-endian bytes per entry, in and out of a table; out of range does nothing.
        var table = [UInt8](repeating: 0xEE, count: 16)
        #expect(data.encode(into: &table, index: 1))
        #expect(Array(table[8...]) == [0x06, 0x00, 0x50, 0x00, 0x00, 0x00, 0x00, 0x00])
        #expect(Array(table[..<8]) == [UInt8](repeating: 0xEE, count: 8))
        #expect(BATEntry.load(from: table, index: 1) == data)
        #expect(!data.encode(into: &table, index: 2) && BATEntry.load(from: table, index: 2) == nil)
        var w = ByteWriter()
        data.encode(into: &w)
        #expect(w.bytes == Array(table[8...]))
        #expect(table.withUnsafeBytes { BATEntry.load(from: $0, index: 1) } == data)
    }

    static let guid = GUID(text: "01234567-89ab-cdef-0123-456789abcdef")!

    static func entry(seq: UInt64 = 3) -> [UInt8] {
        var sector = [UInt8](repeating: 0, count: 4096)
        for i in 0..<4096 { sector[i] = UInt8(truncatingIfNeeded: i * 7) }
        return LogEntry.encode(updates: [.data(fileOffset: 2 << 20, bytes: sector), .zero(fileOffset: 8 << 20, length: 8192)],
                               sequenceNumber: seq, tail: 0, logGUID: guid, flushedFileOffset: 4 << 20, lastFileOffset: 4 << 20)
    }

    @Test func logEntryRoundTrip() throws {
        let bytes = BATAndLogTests.entry()
        #expect(bytes.count == 8192)  // one descriptor sector + one data sector
        let e = try LogEntry.decodeValid(bytes, logGUID: BATAndLogTests.guid, logLength: 1 << 20, at: 1 << 20)
        #expect(e.header.sequenceNumber == 3)
        #expect(e.updates.count == 2)
        guard case let .data(o, b) = e.updates[0] else { Issue.record("expected data"); return }
        #expect(o == 2 << 20)
        #expect(b.count == 4096 && b[4095] == UInt8(truncatingIfNeeded: 4095 * 7) && b[1] == 7)
        #expect(e.updates[1] == .zero(fileOffset: 8 << 20, length: 8192))
    }

    @Test func logEntryRejections() {
        let good = BATAndLogTests.entry()
        // Another log's entry.
        #expect(throws: FormatError.self) { try LogEntry.decodeValid(good, logGUID: .random(), logLength: 1 << 20, at: 0) }
        // Any flipped byte breaks the checksum.
        for i in [12, 100, 4096 + 9, 8191] {
            var b = good
            b[i] ^= 1
            #expect(throws: FormatError.self) { try LogEntry.decodeValid(b, logGUID: BATAndLogTests.guid, logLength: 1 << 20, at: 0) }
        }
        // Longer than the log.
        #expect(throws: FormatError.self) { try LogEntry.decodeValid(good, logGUID: BATAndLogTests.guid, logLength: 4096, at: 0) }
        // Truncated entry.
        #expect(throws: FormatError.self) { try LogEntry.decodeValid(Array(good[0..<4096]), logGUID: BATAndLogTests.guid, logLength: 1 << 20, at: 0) }
    }
}
