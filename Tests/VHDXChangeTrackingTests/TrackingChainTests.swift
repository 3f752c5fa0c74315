import Foundation
import Testing
import VHDXTestSupport

/// Tracking through differencing chains, with the CLI: a child of a tracked disk tracks, an
/// ancestor's IDs answer through the child, and after a merge they stay valid on the ancestor.
@Suite("Tracking through chains", .serialized)
struct TrackingChainTests {
    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    /// The ranges of `track changes --json`, as (offset, length).
    func ranges(_ args: String) throws -> [(UInt64, UInt64)] {
        let r = try vhdx("track changes \(args) --json")
        #expect(r.status == 0, "\(args): \(r.stderr)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        return try #require(j["ranges"] as? [[String: Any]]).map { (($0["offset"] as! NSNumber).uint64Value, ($0["length"] as! NSNumber).uint64Value) }
    }

    func covers(_ rs: [(UInt64, UInt64)], _ offset: UInt64, _ length: UInt64) -> Bool {
        rs.contains { $0.0 <= offset && offset + length <= $0.0 + $0.1 }
    }

    @Test("child of a tracked disk tracks; ancestor IDs answer through it; merge keeps them valid")
    func childAndMerge() throws {
        let dir = Fixtures.tempPath("trackchain")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let base = "\(dir)/base.vhdx", child = "\(dir)/child.avhdx"
        let M: UInt64 = 1 << 20
        #expect(try vhdx("create '\(base)' 64M").status == 0)
        #expect(try vhdx("track enable '\(base)'").status == 0)
        #expect(try vhdx("write '\(base)' --offset 1M --length 4K --pattern 1").status == 0)      // A, before ID0
        let id0 = try vhdx("track seal '\(base)'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try vhdx("write '\(base)' --offset 10M --length 4K --pattern 2").status == 0)     // B
        let made = try vhdx("create '\(child)' --parent '\(base)'")
        #expect(made.status == 0 && made.stderr.contains("change tracking enabled"), "\(made.stderr)")
        #expect(try vhdx("write '\(child)' --offset 20M --length 4K --pattern 3").status == 0)    // C
        let through = try ranges("'\(child)' --since \(id0)")
        #expect(covers(through, 10 * M, 4096) && covers(through, 20 * M, 4096), "\(through)")
        #expect(!covers(through, 1 * M, 4096), "A was written before ID0: \(through)")
        // The child's own IDs.
        let idc = try vhdx("track seal '\(child)'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try vhdx("write '\(child)' --offset 30M --length 4K --pattern 4").status == 0)    // D
        let own = try ranges("'\(child)' --since \(idc)")
        #expect(own.count == 1 && own[0].0 == 30 * M && own[0].1 == 64 << 10, "\(own)")
        // An ancestor's ID on the base itself is still answered (the base is frozen).
        #expect(try ranges("'\(base)' --since \(id0)").count == 1)
        // Merge the child into the base: the base's IDs stay valid and cover what was merged.
        #expect(try vhdx("merge '\(child)'").status == 0)
        let merged = try ranges("'\(base)' --since \(id0)")
        for at in [10, 20, 30] { #expect(covers(merged, UInt64(at) * M, 4096), "\(at) MiB: \(merged)") }
        #expect(!covers(merged, 1 * M, 4096), "\(merged)")
        #expect(try vhdx("check '\(base)'").status == 0)
        let q = try Shell.run("qemu-img check -f vhdx '\(base)'", allowFailure: true)
        #expect(q.status == 0, "\(q.stdout)")
    }
}
