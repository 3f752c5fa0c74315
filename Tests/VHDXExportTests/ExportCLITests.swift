import Foundation
import Testing
import VHDX
import VHDXExport
import VHDXTestSupport

/// The commands as scripts use them: exit codes, JSON summaries, pipes.
@Suite struct ExportCLITests {
    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("the backup cycle through the CLI: export to a pipe, restore from stdin, incremental, apply, verify")
    func cycle() throws {
        let lab = try ExportLab(size: 8 << 20)
        try lab.write(3 << 20, at: 0)
        let d = lab.dir
        let full = try vhdx("export '\(lab.disk)' - | '\(try vhdxBinary())' restore '\(d)/r.vhdx' - --json")
        #expect(full.status == 0, "\(full.stderr)")
        #expect(try json(full.stdout)["change-id"] as? String != nil)
        #expect(try ExportLab.content(d + "/r.vhdx") == lab.model)

        let f = try vhdx("export '\(lab.disk)' '\(d)/full.vxs' --json")
        #expect(f.status == 0, "\(f.stderr)")
        let fj = try json(f.stdout)
        #expect(fj["kind"] as? String == "full")
        #expect(fj["data-bytes"] as? Int == 3 << 20)
        try lab.write(1000, at: 5 << 20)
        let i = try vhdx("export '\(lab.disk)' '\(d)/inc.vxs' --base '\(d)/full.vxs' --json")
        #expect(i.status == 0, "\(i.stderr)")
        let ij = try json(i.stdout)
        #expect(ij["kind"] as? String == "incremental")
        #expect(ij["base-id"] as? String == fj["target-id"] as? String)
        for key in ["scanned-bytes", "changed-bytes", "written-bytes", "ratio", "seconds"] { #expect(ij[key] != nil, "\(key)") }

        #expect(try vhdx("restore '\(d)/a.vhdx' '\(d)/full.vxs'").status == 0)
        let apply = try vhdx("apply '\(d)/a.vhdx' '\(d)/inc.vxs'")
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(try vhdx("verify '\(d)/a.vhdx' '\(d)/full.vxs' '\(d)/inc.vxs'").status == 0)
        // Against the full export alone the image now differs, at the incremental's first byte's granule.
        let differs = try vhdx("verify '\(d)/a.vhdx' '\(d)/full.vxs' --json")
        #expect(differs.status == 1)
        #expect(try json(differs.stdout)["first-difference"] as? Int == 5 << 20)
        // Applied twice: refused, exit 3.
        let twice = try vhdx("apply '\(d)/a.vhdx' '\(d)/inc.vxs'")
        #expect(twice.status == 3)
        #expect(twice.stderr.contains("already applied"))
    }

    @Test("exit 4 when tracking cannot answer from the base, with nothing written; outputs are never overwritten unasked")
    func refusals() throws {
        let lab = try ExportLab(size: 8 << 20)
        try lab.write(1 << 20, at: 0)
        let d = lab.dir
        #expect(try vhdx("export '\(lab.disk)' '\(d)/full.vxs'").status == 0)
        // Tracking disabled and enabled again: every earlier ID is unknown.
        #expect(try vhdx("track disable '\(lab.disk)'").status == 0)
        #expect(try vhdx("track enable '\(lab.disk)'").status == 0)
        let inc = try vhdx("export '\(lab.disk)' '\(d)/inc.vxs' --base '\(d)/full.vxs'")
        #expect(inc.status == 4, "\(inc.stderr)")
        #expect(inc.stderr.contains("full export"))
        #expect(!FileManager.default.fileExists(atPath: d + "/inc.vxs"))
        let since = try vhdx("export '\(lab.disk)' '\(d)/inc.vxs' --since vhdxct1:00000000000000000000000000000000:00000000000000000000000000000000:0:1")
        #expect(since.status == 4)
        // An existing output is kept unless --force; an export never replaces its own source.
        let again = try vhdx("export '\(lab.disk)' '\(d)/full.vxs'")
        #expect(again.status == 1)
        #expect(again.stderr.contains("already exists"))
        #expect(try vhdx("export '\(lab.disk)' '\(d)/full.vxs' --force").status == 0)
        #expect(try vhdx("export '\(lab.disk)' '\(lab.disk)' --force").status == 1)
        #expect(try ExportLab.content(lab.disk) == lab.model)
        // A base that is another disk's export (exit 3) or no export at all (exit 2).
        let other = try ExportLab(size: 8 << 20, seed: 2, name: "otherdisk")
        try other.export("o.vxs")
        let foreign = try vhdx("export '\(lab.disk)' '\(d)/f.vxs' --base '\(other.dir)/o.vxs'")
        #expect(foreign.status == 3, "\(foreign.stderr)")
        #expect(foreign.stderr.contains("another disk"))
        FileManager.default.createFile(atPath: d + "/junk.vxs", contents: Data(repeating: 7, count: 4096))
        let junk = try vhdx("export '\(lab.disk)' '\(d)/j.vxs' --base '\(d)/junk.vxs'")
        #expect(junk.status == 2, "\(junk.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d + "/f.vxs") && !FileManager.default.fileExists(atPath: d + "/j.vxs"))
        // A disk without tracking: the export cannot name its change ID.
        #expect(try vhdx("create '\(d)/plain.vhdx' 4M").status == 0)
        let plain = try vhdx("export '\(d)/plain.vhdx' '\(d)/p.vxs'")
        #expect(plain.status == 4)
        #expect(plain.stderr.contains("not enabled"))
        // An incremental cannot be a full .vhdx; an .avhdx needs an image base.
        #expect(try vhdx("export '\(lab.disk)' '\(d)/x.vhdx' --base '\(d)/full.vxs'").status == 1)
        #expect(try vhdx("export '\(lab.disk)' '\(d)/x.avhdx' --base '\(d)/full.vxs'").status == 1)
    }
}
