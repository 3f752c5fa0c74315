import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

/// Every real image in ../shared/fixtures decodes to the content hash its README gives.
@Suite("Real-world fixtures")
struct FixtureReadTests {
    static let expected: [(String, String, VHDXFile.DiskType)] = [
        ("iotest-dirtylog-10G-4M.vhdx", "179cefe8b0587f123393eedf2aa7aa8d25798591178e6bc3950a09762f38f96f", .dynamic),
        ("iotest-dynamic-1G.vhdx", "d3d112d8dab7fd360609f7d5a7b769904b7a2a7d7b6b8c535f65a23293c05478", .dynamic),
        ("test-disk2vhd.vhdx", "96d964042be9b58dda1725567abfb0cf9fd8380e2118754afa979c2ad445938a", .dynamic),
        ("fixed.vhdx", "bc0be4623b15aa84216fb31ba24e3b621ec7f1c72d198c990ac0eced222d9f62", .fixed),
        ("dynamic.vhdx", "8e2b5e9265d694b42b81819e3bff29770eff4ed0f4f9f311693ff3dbdc93efac", .dynamic),
    ]

    @Test("content SHA-256 matches", arguments: expected)
    func contentMatches(_ fixture: (String, String, VHDXFile.DiskType)) throws {
        let path = try Fixtures.path(fixture.0)
        let image = try VHDXFile.openFile(path: path)
        #expect(image.diskType == fixture.2)
        #expect(try contentSHA256(image) == fixture.1)
    }

    @Test("read-only open of a dirty log replays in memory and leaves the file byte-identical")
    func dirtyLogReadOnly() throws {
        let path = try Fixtures.path("iotest-dirtylog-10G-4M.vhdx")
        let before = try Shell.sha256(file: path)
        let image = try VHDXFile.openFile(path: path)
        let replay = try #require(image.logReplay)
        #expect(replay.inMemory)
        #expect(replay.entryCount == 1)
        #expect(replay.lastSequenceNumber == 7)
        // The block the log adds (the 18th MiB) reads 0xa5 only if the replayed BAT is used.
        #expect(try image.read(at: 17 << 20, count: 4096).allSatisfy { $0 == 0xa5 })
        #expect(try image.read(at: 18 << 20, count: 4096).allSatisfy { $0 == 0 })
        #expect(image.findings.contains { $0.kind == .notice && $0.message.contains("in memory") })
        #expect(try Shell.sha256(file: path) == before)
    }

    @Test("a writable open replays the log into the file when it closes (or first writes), and it then opens clean")
    func dirtyLogWritableReplay() throws {
        let copy = try Fixtures.scratchCopy(try Fixtures.path("iotest-dirtylog-10G-4M.vhdx"))
        do {
            let written = try VHDXFile.openFile(path: copy, writable: true)
            #expect(written.logReplay?.inMemory == true)
            try written.close()
            #expect(written.logReplay?.inMemory == false)
            #expect(written.header.logGUID.isZero)
        }
        let reopened = try VHDXFile.openFile(path: copy)
        #expect(reopened.logReplay == nil)
        #expect(try contentSHA256(reopened) == "179cefe8b0587f123393eedf2aa7aa8d25798591178e6bc3950a09762f38f96f")
        try Shell.require("qemu-img")
        let r = try Shell.run("qemu-img check -f vhdx '\(copy)'", allowFailure: true)
        #expect(r.status == 0, "qemu-img check after our replay: \(r.stdout) \(r.stderr)")
    }

    @Test("Disk2VHD's identical headers with equal sequence numbers are accepted")
    func disk2vhdIdenticalHeaders() throws {
        let image = try VHDXFile.openFile(path: try Fixtures.path("test-disk2vhd.vhdx"))
        #expect(image.header.sequenceNumber == 1)
        #expect(image.layout.fileIdentifier.creator == "d2v")
    }

    @Test("the differencing fixture reports its type and parent locator")
    func differencingLocator() throws {
        let image = try VHDXFile.openFile(path: try Fixtures.path("differencing.avhdx"))
        #expect(image.diskType == .differencing)
        let locator = try #require(image.layout.parentLocator)
        #expect(locator.parentLinkage == GUID(text: "{ff34003b-11ed-4cf8-a166-b2be05e20b80}"))
        #expect(locator["relative_path"] == ".\\Generation 1_49C4BAF3-4B25-4406-8C4B-D39E65C32385.avhdx")
        #expect(locator["absolute_win32_path"]?.hasPrefix("C:\\Users\\Public\\Documents\\Hyper-V\\Virtual hard disks\\") == true)
        #expect(locator["volume_path"] != nil)
        let summary = try image.allocationSummary()
        #expect(summary.blockCounts[.partial] == 32)
        #expect(summary.sectorBitmapBlocks == 2)
        // Opened alone (no chain), a read that needs the parent is a clear error, never zeros.
        #expect(throws: VHDXError(.parentNotFound, "")) { try image.read(at: 0, count: 4096) }
    }

    @Test("stale log entries of clean Windows files are ignored", arguments: ["dynamic.vhdx", "fixed.vhdx", "iotest-dynamic-1G.vhdx"])
    func cleanFilesIgnoreStaleLog(_ name: String) throws {
        let image = try VHDXFile.openFile(path: try Fixtures.path(name))
        #expect(image.header.logGUID.isZero)
        #expect(image.logReplay == nil)
        #expect(try Checker.check(path: try Fixtures.path(name)).exitCode == 0)
    }

    @Test("map shows the real allocation", arguments: ["iotest-dynamic-1G.vhdx"])
    func mapOfHyperVImage(_ name: String) throws {
        let image = try VHDXFile.openFile(path: try Fixtures.path(name))
        let extents = try image.extents()
        // 3 FULLY_PRESENT blocks then 29 ZERO blocks of 32 MiB.
        #expect(extents.count == 2)
        #expect(extents[0].kind == .data && extents[0].virtualOffset == 0 && extents[0].length == 96 << 20)
        #expect(extents[1].kind == .zero && extents[1].length == (1 << 30) - (96 << 20))
        #expect(extents.reduce(0) { $0 + $1.length } == image.virtualSize)
    }
}
