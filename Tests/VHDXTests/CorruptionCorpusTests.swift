import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

/// A generated corpus of damaged images: every field of every structure flipped, truncation at
/// every structure boundary, overlapping regions, BAT entries past EOF, absurd counts and
/// lengths. Each must give a clear error or a `check` finding: no crash, no hang, no write
/// (the storage is read-only and would throw on a write).
@Suite("Corruption corpus", .serialized)
struct CorruptionCorpusTests {
    /// An 8 GiB qemu-made dynamic image (1 MiB blocks, so chunk 0 ends at block 4096 with a
    /// sector-bitmap slot) with data at [0, 3 MiB) and [10, 11 MiB).
    /// Layout: log 1 MiB, BAT 2 MiB, metadata 3 MiB, blocks from 8 MiB.
    static let base: [UInt8] = {
        let path = Fixtures.tempPath("corpus-base.vhdx")
        _ = try? Shell.run("qemu-img create -q -f vhdx -o block_size=1M '\(path)' 8G && qemu-io -f vhdx -c 'write -q -P 0x11 0 3M' -c 'write -q -P 0x22 10M 1M' '\(path)'")
        return (try? Array(Data(contentsOf: URL(fileURLWithPath: path)))) ?? []
    }()

    struct Case: CustomStringConvertible, Sendable {
        let name: String
        let mutate: @Sendable ([UInt8]) -> [UInt8]
        var description: String { name }
    }

    static let bat = 2 << 20, meta = 3 << 20

    static func flip(_ offset: Int, _ mask: UInt8 = 0x5A) -> @Sendable ([UInt8]) -> [UInt8] {
        { var b = $0; b[offset] ^= mask; return b }
    }

    static func put32(_ b: inout [UInt8], _ o: Int, _ v: UInt32) { for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
    static func put64(_ b: inout [UInt8], _ o: Int, _ v: UInt64) { for i in 0..<8 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }

    /// Edits a region-table field in both copies and fixes their checksums, so only the rule
    /// under test is broken.
    static func region(_ edit: @escaping @Sendable (inout [UInt8], Int) -> Void) -> @Sendable ([UInt8]) -> [UInt8] {
        { var b = $0
          for t in [192 * 1024, 256 * 1024] {
              edit(&b, t)
              put32(&b, t + 4, 0)
              put32(&b, t + 4, CRC32C.checksum(b[t..<t + 65536]))
          }
          return b }
    }

    /// Edits both headers and fixes their checksums.
    static func header(_ edit: @escaping @Sendable (inout [UInt8], Int) -> Void) -> @Sendable ([UInt8]) -> [UInt8] {
        { var b = $0
          for h in [64 * 1024, 128 * 1024] {
              edit(&b, h)
              put32(&b, h + 4, 0)
              put32(&b, h + 4, CRC32C.checksum(b[h..<h + 4096]))
          }
          return b }
    }

    static func truncate(_ n: Int) -> @Sendable ([UInt8]) -> [UInt8] { { Array($0.prefix(n)) } }

    static var cases: [Case] {
        var c: [Case] = []
        c.append(Case(name: "file identifier signature", mutate: flip(0)))
        for (slot, h) in [(1, 64 * 1024), (2, 128 * 1024)] {
            for (field, o) in [("signature", 0), ("checksum", 4), ("sequence", 8), ("fileWriteGuid", 16), ("dataWriteGuid", 32),
                               ("logGuid", 48), ("logVersion", 64), ("version", 66), ("logLength", 68), ("logOffset", 72), ("reserved", 200)] {
                c.append(Case(name: "header \(slot) \(field) flipped", mutate: flip(h + o)))
            }
        }
        c.append(Case(name: "both headers flipped", mutate: { var b = $0; b[64 * 1024 + 20] ^= 1; b[128 * 1024 + 20] ^= 1; return b }))
        c.append(Case(name: "header version 2 with a valid checksum", mutate: header { b, h in b[h + 66] = 2 }))
        c.append(Case(name: "log offset misaligned", mutate: header { b, h in put64(&b, h + 72, (1 << 20) + 4096) }))
        c.append(Case(name: "log inside header section", mutate: header { b, h in put64(&b, h + 72, 0) }))
        c.append(Case(name: "log length absurd", mutate: header { b, h in put32(&b, h + 68, 0xFFF0_0000) }))
        c.append(Case(name: "log GUID set but log holds no entry of it", mutate: header { b, h in b[h + 48] = 0x42 }))
        c.append(Case(name: "reserved header bytes set", mutate: header { b, h in b[h + 1000] = 1 }))
        for (copy, t) in [(1, 192 * 1024), (2, 256 * 1024)] {
            for (field, o) in [("signature", 0), ("checksum", 4), ("entryCount", 8), ("reserved", 12), ("entry0 guid", 16),
                               ("entry0 offset", 32), ("entry0 length", 40), ("entry1 required", 76), ("tail", 65535)] {
                c.append(Case(name: "region table \(copy) \(field) flipped", mutate: flip(t + o)))
            }
        }
        c.append(Case(name: "both region tables flipped", mutate: { var b = $0; b[192 * 1024 + 33] ^= 1; b[256 * 1024 + 33] ^= 1; return b }))
        c.append(Case(name: "overlapping regions", mutate: region { b, t in put64(&b, t + 48, UInt64(bat)) }))
        c.append(Case(name: "region overlaps the log", mutate: region { b, t in put64(&b, t + 32, 1 << 20) }))
        c.append(Case(name: "region in header section", mutate: region { b, t in put64(&b, t + 32, 0) }))
        c.append(Case(name: "region past EOF", mutate: region { b, t in put64(&b, t + 32, 1 << 40) }))
        c.append(Case(name: "region length 0", mutate: region { b, t in put32(&b, t + 40, 0) }))
        c.append(Case(name: "region misaligned", mutate: region { b, t in put64(&b, t + 32, UInt64(bat) + 512) }))
        c.append(Case(name: "region entry count absurd", mutate: region { b, t in put32(&b, t + 8, 0xFFFF_FFFF) }))
        c.append(Case(name: "region entry count 2047 of garbage", mutate: region { b, t in put32(&b, t + 8, 2047) ; for i in 80..<65536 { b[t + i] = UInt8(truncatingIfNeeded: i) } }))
        c.append(Case(name: "duplicate BAT region", mutate: region { b, t in for i in 0..<16 { b[t + 48 + i] = b[t + 16 + i] } }))
        c.append(Case(name: "no regions", mutate: region { b, t in put32(&b, t + 8, 0) }))
        c.append(Case(name: "unknown required region", mutate: region { b, t in put32(&b, t + 8, 3); b[t + 80] = 0x99; put64(&b, t + 96, 5 << 20); put32(&b, t + 104, 1 << 20); put32(&b, t + 108, 1) }))
        // Metadata: no checksum, so each edit is a rule broken outright.
        c.append(Case(name: "metadata signature", mutate: flip(meta)))
        c.append(Case(name: "metadata entry count absurd", mutate: { var b = $0; b[meta + 10] = 0xFF; b[meta + 11] = 0xFF; return b }))
        c.append(Case(name: "metadata entry count zero", mutate: { var b = $0; b[meta + 10] = 0; b[meta + 11] = 0; return b }))
        c.append(Case(name: "metadata reserved", mutate: flip(meta + 20)))
        for e in 0..<5 {
            let o = meta + 32 + 32 * e
            c.append(Case(name: "metadata entry \(e) offset far out", mutate: { var b = $0; put32(&b, o + 16, 0xFFFF_FFF0); return b }))
            c.append(Case(name: "metadata entry \(e) length absurd", mutate: { var b = $0; put32(&b, o + 20, 0x7FFF_FFFF); return b }))
            c.append(Case(name: "metadata entry \(e) overlaps the table", mutate: { var b = $0; put32(&b, o + 16, 16); return b }))
            c.append(Case(name: "metadata entry \(e) unknown required id", mutate: { var b = $0; b[o] ^= 0xFF; return b }))
            c.append(Case(name: "metadata entry \(e) reserved flag", mutate: { var b = $0; b[o + 24] |= 0x80; return b }))
        }
        c.append(Case(name: "metadata entries overlap", mutate: { var b = $0; for i in 0..<4 { b[meta + 64 + 16 + i] = b[meta + 32 + 16 + i] }; return b }))
        // Metadata item values, located through the table.
        func item(_ id: GUID, _ edit: @escaping @Sendable (inout [UInt8], Int) -> Void) -> @Sendable ([UInt8]) -> [UInt8] {
            { var b = $0
              for e in 0..<Int(b[meta + 10]) where Array(b[meta + 32 + 32 * e..<meta + 48 + 32 * e]) == id.bytes {
                  let off = Int(b[meta + 48 + 32 * e]) | Int(b[meta + 49 + 32 * e]) << 8 | Int(b[meta + 50 + 32 * e]) << 16
                  edit(&b, meta + off)
              }
              return b }
        }
        c.append(Case(name: "block size 3 MiB", mutate: item(KnownGUID.fileParameters) { b, o in put32(&b, o, 3 << 20) }))
        c.append(Case(name: "block size 0", mutate: item(KnownGUID.fileParameters) { b, o in put32(&b, o, 0) }))
        c.append(Case(name: "block size 4 GiB - 1", mutate: item(KnownGUID.fileParameters) { b, o in put32(&b, o, 0xFFFF_FFFF) }))
        c.append(Case(name: "file parameter reserved flag", mutate: item(KnownGUID.fileParameters) { b, o in b[o + 4] |= 0x10 }))
        c.append(Case(name: "HasParent without a locator", mutate: item(KnownGUID.fileParameters) { b, o in b[o + 4] |= 2 }))
        c.append(Case(name: "virtual size 0", mutate: item(KnownGUID.virtualDiskSize) { b, o in put64(&b, o, 0) }))
        c.append(Case(name: "virtual size 2^63", mutate: item(KnownGUID.virtualDiskSize) { b, o in put64(&b, o, 1 << 63) }))
        c.append(Case(name: "virtual size not a sector multiple", mutate: item(KnownGUID.virtualDiskSize) { b, o in put64(&b, o, (8 << 30) + 100) }))
        c.append(Case(name: "virtual size beyond the BAT", mutate: item(KnownGUID.virtualDiskSize) { b, o in put64(&b, o, 60 << 40) }))
        c.append(Case(name: "logical sector size 1000", mutate: item(KnownGUID.logicalSectorSize) { b, o in put32(&b, o, 1000) }))
        c.append(Case(name: "physical sector size 7", mutate: item(KnownGUID.physicalSectorSize) { b, o in put32(&b, o, 7) }))
        // BAT entries.
        func batEntry(_ i: Int, _ v: UInt64) -> @Sendable ([UInt8]) -> [UInt8] { { var b = $0; put64(&b, bat + 8 * i, v); return b } }
        c.append(Case(name: "BAT reserved state 4", mutate: batEntry(0, 4 | (8 << 20))))
        c.append(Case(name: "BAT reserved bits", mutate: batEntry(0, 6 | (8 << 20) | 0x100)))
        c.append(Case(name: "BAT entry past EOF", mutate: batEntry(1, 6 | (1000 << 20))))
        c.append(Case(name: "BAT entry at 2^44 MiB", mutate: batEntry(1, 6 | (UInt64(0xFFF_FFFF_FFFF) << 20))))
        c.append(Case(name: "BAT duplicate offsets", mutate: batEntry(1, 6 | (8 << 20))))
        c.append(Case(name: "BAT entry in header section", mutate: batEntry(0, 6)))
        c.append(Case(name: "BAT entry over the BAT region", mutate: batEntry(4, 6 | (2 << 20))))
        c.append(Case(name: "BAT partially present in a dynamic disk", mutate: batEntry(0, 7 | (8 << 20))))
        c.append(Case(name: "BAT zero state with an offset", mutate: batEntry(5, 2 | (30 << 20))))
        c.append(Case(name: "BAT sector bitmap present in a dynamic disk", mutate: batEntry(4096, 6 | (9 << 20))))
        // Truncation at every structure boundary.
        let n = base.count
        for t in [0, 7, 4096, 65536, 65536 + 2048, 128 * 1024 + 100, 192 * 1024, 256 * 1024 + 10, 320 * 1024, 1 << 20,
                  (1 << 20) + 4096, 2 << 20, 3 << 20, (3 << 20) + 4096, 4 << 20, (8 << 20) + 4096, (11 << 20) + 1, n - 1] where t < n {
            c.append(Case(name: "truncated to \(t) bytes", mutate: truncate(t)))
        }
        return c
    }

    @Test("every damaged image gives a clear error or a check finding", arguments: cases)
    func damaged(_ c: Case) throws {
        try #require(!CorruptionCorpusTests.base.isEmpty, "qemu-img made no base image")
        let bytes = c.mutate(CorruptionCorpusTests.base)
        let report = try Checker.check(storage: MemoryStorage(bytes, writable: false))
        #expect(report.corruptions > 0, "check found nothing in \(c.name): \(report.findings)")
        for f in report.findings where f.kind == .corruption {
            #expect(!f.message.isEmpty && !f.structure.isEmpty)
        }
        // Open either refuses with a VHDXError, or serves reads that succeed or fail cleanly.
        if let image = try? VHDXFile(storage: MemoryStorage(bytes, writable: false)) {
            _ = try? image.allocationSummary()
            if let extents = try? image.extents() {
                for e in extents.prefix(64) where e.kind == .data {
                    _ = try? image.read(at: e.virtualOffset, count: Int(min(e.length, 1 << 20)))
                }
            }
        }
    }

    @Test("the undamaged base checks clean and reads back")
    func baseIsClean() throws {
        let report = try Checker.check(storage: MemoryStorage(CorruptionCorpusTests.base, writable: false))
        #expect(report.exitCode == 0, "\(report.findings)")
        let image = try VHDXFile(storage: MemoryStorage(CorruptionCorpusTests.base, writable: false))
        #expect(try image.read(at: 0, count: 3 << 20).allSatisfy { $0 == 0x11 })
        #expect(try image.read(at: 10 << 20, count: 1 << 20).allSatisfy { $0 == 0x22 })
        #expect(try image.read(at: 3 << 20, count: 1 << 20).allSatisfy { $0 == 0 })
    }

    @Test("a damaged log entry or a truncated dirty image is refused, never read stale")
    func damagedLog() throws {
        let good = try Array(Data(contentsOf: URL(fileURLWithPath: try Fixtures.path("iotest-dirtylog-10G-4M.vhdx"))))
        var flipped = good
        flipped[(1 << 20) + 49152 + 100] ^= 1  // inside the active entry (sequence 7, at log offset 48 KiB)
        for bytes in [flipped, Array(good.prefix(20 << 20))] {
            #expect(throws: VHDXError(.corrupt, "")) { try VHDXFile(storage: MemoryStorage(bytes, writable: false)) }
            let report = try Checker.check(storage: MemoryStorage(bytes, writable: false))
            #expect(report.corruptions > 0)
        }
    }

    // MARK: - Inputs the fuzzer's helper crafted (Scripts/fuzz.sh), kept as regressions

    /// Writes `entries` into the 1 MiB log at 1 MiB and points both headers at `guid`.
    static func withLog(_ base: [UInt8], guid: GUID, entries: [(UInt64, [UInt8])]) -> [UInt8] {
        var b = base
        for (position, bytes) in entries { b.replaceSubrange((1 << 20) + Int(position)..<(1 << 20) + Int(position) + bytes.count, with: bytes) }
        return header { b, h in b.replaceSubrange(h + 48..<h + 64, with: guid.bytes) }(b)
    }

    @Test("a log offset that overflows when its length is added is refused")
    func logOffsetOverflow() throws {
        let bytes = CorruptionCorpusTests.header { b, h in CorruptionCorpusTests.put64(&b, h + 72, 0xFFFF_FFFF_FFF0_0000) }(CorruptionCorpusTests.base)
        #expect(throws: VHDXError.self) { try VHDXFile(storage: MemoryStorage(bytes, writable: false)) }
        #expect(try Checker.check(storage: MemoryStorage(bytes, writable: false)).corruptions > 0)
    }

    @Test("a region whose end wraps past 2^64 is refused")
    func regionWraps() throws {
        let bytes = CorruptionCorpusTests.region { b, t in CorruptionCorpusTests.put64(&b, t + 32, 0xFFFF_FFFF_FFF0_0000) }(CorruptionCorpusTests.base)
        #expect(throws: VHDXError.self) { try VHDXFile(storage: MemoryStorage(bytes, writable: false)) }
        #expect(try Checker.check(storage: MemoryStorage(bytes, writable: false)).corruptions > 0)
    }

    @Test("a log full of valid entries whose head's tail names no entry is refused in linear time")
    func logSearchStaysLinear() throws {
        let guid = GUID.random()
        // 255 one-sector entries, consecutive sequence numbers, each naming the empty last slot as tail.
        let entries = (0..<255).map { i in
            (UInt64(i) * 4096, LogEntry.encode(updates: [], sequenceNumber: UInt64(i + 1), tail: 255 * 4096, logGUID: guid,
                                               flushedFileOffset: 0, lastFileOffset: 0))
        }
        let bytes = CorruptionCorpusTests.withLog(CorruptionCorpusTests.base, guid: guid, entries: entries)
        #expect(throws: VHDXError(.corrupt, "")) { try VHDXFile(storage: MemoryStorage(bytes, writable: false)) }
    }

    @Test("a pending log claiming a 1 TiB file does not make check scan a terabyte")
    func hugeLastFileOffset() throws {
        let guid = GUID.random()
        let entry = LogEntry.encode(updates: [], sequenceNumber: 1, tail: 0, logGUID: guid, flushedFileOffset: 0, lastFileOffset: 1 << 40)
        let bytes = CorruptionCorpusTests.withLog(CorruptionCorpusTests.base, guid: guid, entries: [(0, entry)])
        let image = try VHDXFile(storage: MemoryStorage(bytes, writable: false))
        #expect(image.logReplay?.inMemory == true)
        let report = try Checker.check(storage: MemoryStorage(bytes, writable: false))
        #expect(report.corruptions == 0, "\(report.findings)")
        #expect(report.leakedBytes == 0)
    }
}

