import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

/// The `vhdx` binary end to end: JSON on stdout, messages on stderr, documented exit codes,
/// inputs never modified.
@Suite("vhdx CLI", .serialized)
struct CLITests {
    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func infoJSON() throws {
        let path = try Fixtures.path("iotest-dynamic-1G.vhdx")
        let r = try vhdx("info --json '\(path)'")
        #expect(r.status == 0)
        let j = try json(r.stdout)
        #expect(j["type"] as? String == "dynamic")
        #expect((j["virtual-size"] as? NSNumber)?.uint64Value == 1 << 30)
        #expect((j["block-size"] as? NSNumber)?.uint64Value == 32 << 20)
        #expect((j["logical-sector-size"] as? NSNumber)?.intValue == 512)
        #expect((j["physical-sector-size"] as? NSNumber)?.intValue == 4096)
        let counts = try #require(j["block-counts"] as? [String: Any])
        #expect((counts["data"] as? NSNumber)?.intValue == 3)
        #expect((counts["zero"] as? NSNumber)?.intValue == 29)
        #expect((j["allocated-bytes"] as? NSNumber)?.uint64Value == 96 << 20)
        #expect(j["creator"] as? String == "Microsoft Windows 6.2.9200.16384")
    }

    @Test func infoHumanShowsSizesAndLocator() throws {
        let r = try vhdx("info '\(try Fixtures.path("differencing.avhdx"))'")
        #expect(r.status == 0)
        #expect(r.stdout.contains("virtual size: 8 GiB (8589934592 bytes)"))
        #expect(r.stdout.contains("format: VHDX (differencing)"))
        #expect(r.stdout.contains("parent_linkage: {ff34003b-11ed-4cf8-a166-b2be05e20b80}"))
        #expect(r.stdout.contains("relative_path: .\\Generation 1_49C4BAF3-4B25-4406-8C4B-D39E65C32385.avhdx"))
    }

    @Test func infoReportsInMemoryReplayWithoutWriting() throws {
        let path = try Fixtures.path("iotest-dirtylog-10G-4M.vhdx")
        let before = try Shell.sha256(file: path)
        let r = try vhdx("info --json '\(path)'")
        let log = try #require(try json(r.stdout)["log"] as? [String: Any])
        #expect(log["state"] as? String == "replayed-in-memory")
        #expect(try Shell.sha256(file: path) == before)
    }

    @Test func mapJSONMergesRuns() throws {
        let r = try vhdx("map --json '\(try Fixtures.path("iotest-dynamic-1G.vhdx"))'")
        #expect(r.status == 0)
        let items = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(items.count == 2)
        #expect(items[0]["state"] as? String == "data")
        #expect((items[0]["file-offset"] as? NSNumber) != nil)
        #expect(items[1]["state"] as? String == "zero")
        #expect(items[1]["file-offset"] is NSNull)
    }

    @Test("sizes accept K/M/G/T suffixes", arguments: [("96M", "1M"), ("98304K", "1048576"), ("0x6000000", "1m"), ("96MiB", "0x100000")])
    func mapRangeWithSuffixes(_ c: (String, String)) throws {
        let r = try vhdx("map --json --offset \(c.0) --length \(c.1) '\(try Fixtures.path("iotest-dynamic-1G.vhdx"))'")
        #expect(r.status == 0, "\(r.stderr)")
        let items = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(items.count == 1)
        #expect((items.first?["offset"] as? NSNumber)?.uint64Value == 96 << 20)
        #expect((items.first?["length"] as? NSNumber)?.uint64Value == 1 << 20)
        #expect(items.first?["state"] as? String == "zero")
    }

    @Test func badSizeIsAUsageError() throws {
        let r = try vhdx("map --offset 12Q '\(try Fixtures.path("dynamic.vhdx"))'")
        #expect(r.status == 64)
        #expect(r.stderr.contains("offset"))
    }

    @Test func checkExitCodes() throws {
        #expect(try vhdx("check '\(try Fixtures.path("dynamic.vhdx"))'").status == 0)
        // The qemu iotest image left data in blocks its BAT never referenced: leaks only.
        let leaky = try vhdx("check --json '\(try Fixtures.path("iotest-dirtylog-10G-4M.vhdx"))'")
        #expect(leaky.status == 3)
        #expect(try json(leaky.stdout)["result"] as? String == "leaks")
        let missing = try vhdx("check /nonexistent/x.vhdx")
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("/nonexistent/x.vhdx"))
        let copy = try Fixtures.scratchCopy(try Fixtures.path("dynamic.vhdx"))
        // Reserved bits of BAT entry 0 (the BAT region is at 3 MiB in this Windows file).
        try Shell.run("printf '\\xff' | dd of='\(copy)' bs=1 seek=$((3*1024*1024+2)) conv=notrunc status=none")
        let bad = try vhdx("check --json '\(copy)'")
        #expect(bad.status == 2, "\(bad.stdout)")
        unlink(copy)
    }

    @Test func repairRestoresDamagedCopiesAndReplaysLog() throws {
        let copy = try Fixtures.scratchCopy(try Fixtures.path("iotest-dirtylog-10G-4M.vhdx"))
        // Damage header 1 and region table 1.
        try Shell.run("printf 'XX' | dd of='\(copy)' bs=1 seek=$((64*1024+20)) conv=notrunc status=none")
        try Shell.run("printf 'XX' | dd of='\(copy)' bs=1 seek=$((192*1024+20)) conv=notrunc status=none")
        let before = try vhdx("check --json '\(copy)'")
        #expect(before.status == 2)
        let fixed = try vhdx("check --repair --json '\(copy)'")
        let j = try json(fixed.stdout)
        let repaired = try #require(j["repaired"] as? [String])
        #expect(repaired.contains { $0.contains("replayed 1 pending log") })
        #expect(repaired.contains { $0.contains("headers") })
        #expect(repaired.contains { $0.contains("region table copy 1") })
        #expect(fixed.status == 3, "after repair only the old leaks remain: \(fixed.stdout)")
        let image = try VHDXFile.openFile(path: copy)
        #expect(image.logReplay == nil)
        #expect(image.findings.filter { $0.kind == .corruption }.isEmpty)
        #expect(try Shell.run("cmp <(dd if='\(copy)' bs=64K skip=3 count=1 status=none) <(dd if='\(copy)' bs=64K skip=4 count=1 status=none)", allowFailure: true).status == 0)
        try Shell.require("qemu-img")
        #expect(try Shell.run("qemu-img check -f vhdx '\(copy)'", allowFailure: true).status == 0)
        unlink(copy)
    }

    @Test func convertRefusesItsInputOnly() throws {
        let copy = try Fixtures.scratchCopy(try Fixtures.path("dynamic.vhdx"))
        let before = try Shell.sha256(file: copy)
        let same = try vhdx("convert '\(copy)' '\(copy)'")
        #expect(same.status == 1 && same.stderr.contains("refusing"), "exit \(same.status): \(same.stderr)")
        try Shell.run("ln -sf '\(copy)' '\(copy).link'")
        let link = try vhdx("convert '\(copy)' '\(copy).link'")
        #expect(link.status == 1 && link.stderr.contains("refusing to overwrite the source"), "exit \(link.status): \(link.stderr)")
        // Converting to another VHDX works and leaves the source alone.
        #expect(try vhdx("convert '\(copy)' '\(copy).out.vhdx'").status == 0)
        #expect(try vhdx("compare '\(copy)' '\(copy).out.vhdx'").status == 0)
        #expect(try Shell.sha256(file: copy) == before)
        unlink(copy); unlink(copy + ".link"); unlink(copy + ".out.vhdx")
    }

    @Test func convertToStdoutAndFileAgree() throws {
        let path = try Fixtures.path("fixed.vhdx")
        let out = Fixtures.tempPath("fixed.raw")
        #expect(try vhdx("convert '\(path)' '\(out)'").status == 0)
        let streamed = try Shell.run("'\(try vhdxBinary())' convert '\(path)' - | sha256sum").stdout.prefix(64)
        #expect(try Shell.sha256(file: out) == String(streamed))
        #expect(String(streamed) == "bc0be4623b15aa84216fb31ba24e3b621ec7f1c72d198c990ac0eced222d9f62")
        // No temporary file of this output is left beside it (other tests write their own
        // temporaries into the same directory concurrently, so look only for ours).
        let url = URL(fileURLWithPath: out)
        let ours = ".\(url.lastPathComponent).tmp-"
        let dir = url.deletingLastPathComponent().path
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(ours) }.isEmpty)
        unlink(out)
    }

    @Test func progressGoesToStderr() throws {
        let out = Fixtures.tempPath("p.raw")
        let r = try vhdx("convert --progress '\(try Fixtures.path("iotest-dynamic-1G.vhdx"))' '\(out)'")
        #expect(r.status == 0)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("convert: 100%"))
        unlink(out)
    }

    @Test func notAVHDXIsAClearError() throws {
        let junk = Fixtures.tempPath("junk.vhdx")
        try Shell.run("head -c 2097152 /dev/zero > '\(junk)'")
        let r = try vhdx("info '\(junk)'")
        #expect(r.status == 1)
        #expect(r.stderr.contains("not a VHDX file"))
        #expect(try vhdx("check '\(junk)'").status == 2)
        unlink(junk)
    }

    /// `check --chain` of an image whose own headers are both destroyed is corruption (exit 2,
    /// with its JSON report), as without --chain: not "the check could not run" (exit 1, no
    /// report), which a CI job would misread as a missing file.
    @Test func checkChainOfADamagedImageIsCorruption() throws {
        let img = Fixtures.tempPath("noheader.vhdx")
        defer { unlink(img) }
        #expect(try vhdx("create '\(img)' 8M").status == 0)
        for offset in [64 << 10, 128 << 10] {
            try Shell.run("printf XXXXXXXX | dd of='\(img)' bs=1 seek=\(offset) conv=notrunc status=none")
        }
        for args in ["check --json", "check --json --chain"] {
            let r = try vhdx("\(args) '\(img)'")
            #expect(r.status == 2, "\(args): \(r.stderr)")
            let j = try json(r.stdout)
            #expect(j["result"] as? String == "corrupt", "\(args)")
        }
    }
}
