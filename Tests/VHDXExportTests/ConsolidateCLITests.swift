import Foundation
import Testing
import VHDX
import VHDXExport
import VHDXTestSupport

/// `vhdx consolidate` as scripts use it: exit codes, JSON, stdout into a pipe.
@Suite struct ConsolidateCLITests {
    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    @Test("exit 0 with a JSON summary, - into restore -, and the next incremental; exit 2, 3 and 64 with nothing written")
    func exitCodes() throws {
        let lab = try ExportLab(size: 4 << 20, granule: 64 << 10, seed: 31)
        try lab.write(2 << 20, at: 0)
        try lab.export("full.vxs")
        for k in 1...3 {
            try lab.write(100 << 10, at: k * (900 << 10))
            try lab.export("inc\(k).vxs", base: k == 1 ? "full.vxs" : "inc\(k - 1).vxs")
        }
        let d = lab.dir
        let all = "'\(d)/full.vxs' '\(d)/inc1.vxs' '\(d)/inc2.vxs' '\(d)/inc3.vxs'"
        let ok = try vhdx("consolidate '\(d)/cons.vxs' \(all) --json")
        #expect(ok.status == 0, "\(ok.stderr)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(ok.stdout.utf8)) as? [String: Any])
        #expect(j["inputs"] as? Int == 4 && j["stands-for"] is String && j["target-id"] is String && (j["written-bytes"] as? Int ?? 0) > 0)
        let pipe = try vhdx("consolidate - \(all) | '\(try vhdxBinary())' restore '\(d)/p.raw' -")
        #expect(pipe.status == 0, "\(pipe.stderr)")
        #expect(ExportLab.fileBytes(d + "/p.raw") == lab.model)
        try lab.write(10, at: 5)
        try lab.export("inc4.vxs", base: "inc3.vxs")
        let next = try vhdx("restore '\(d)/n.raw' '\(d)/cons.vxs' '\(d)/inc4.vxs'")
        #expect(next.status == 0, "\(next.stderr)")
        #expect(ExportLab.fileBytes(d + "/n.raw") == lab.model)

        var bad = ExportLab.fileBytes(d + "/inc2.vxs")
        bad[bad.count - 200] ^= 1
        try Data(bad).write(to: URL(fileURLWithPath: d + "/bad2.vxs"))
        let damaged = try vhdx("consolidate '\(d)/x.vxs' '\(d)/full.vxs' '\(d)/inc1.vxs' '\(d)/bad2.vxs' '\(d)/inc3.vxs'")
        #expect(damaged.status == 2, "\(damaged.stderr)")
        let gap = try vhdx("consolidate '\(d)/x.vxs' '\(d)/full.vxs' '\(d)/inc1.vxs' '\(d)/inc3.vxs'")
        #expect(gap.status == 3 && gap.stderr.contains("wrong base"), "\(gap.stderr)")
        #expect(try vhdx("consolidate '\(d)/x.vxs' '\(d)/full.vxs'").status == 64)
        #expect(try vhdx("consolidate '\(d)/x.vxs.vhds' \(all)").status == 64)
        #expect(try vhdx("consolidate '\(d)/cons.vxs' \(all)").status == 1, "an existing output is kept")
        #expect(!FileManager.default.fileExists(atPath: d + "/x.vxs"))
        #expect(try lab.listing().allSatisfy { !$0.hasPrefix(".") })
    }
}
