import Foundation
import Testing
import VHDX
import VHDXFormat
import VHDXSets
import VHDXTestSupport

/// The `vhdx set …` commands and the set as an image argument, through the binary: output
/// shapes, exit codes, one writer ("in use"), backing files moved or modified outside the set
/// and relinked, a Hyper-V `.vhds` refused untouched.
@Suite("VHD Sets through the CLI", .serialized)
struct SetCLITests {
    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    func freshDir(_ name: String) throws -> String {
        let dir = Fixtures.tempPath(name)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("every image command takes SET.vhds: write, info, map, check, convert, compare, track status/seal/changes")
    func setAsImage() throws {
        let dir = try freshDir("setcli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let set = "\(dir)/s.vhds"
        #expect(try vhdx("set create '\(set)' 16M --block-size 1M").status == 0)
        try Shell.run("head -c 1048576 /dev/urandom > '\(dir)/a.bin'")
        #expect(try vhdx("write '\(set)' --offset 2M --input '\(dir)/a.bin'").status == 0)
        let cp = try vhdx("set checkpoint '\(set)' --json")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(cp.stdout.utf8)) as? [String: Any])
        let id = try #require(j["change-id"] as? String)
        #expect(try vhdx("write '\(set)' --offset 8M --input '\(dir)/a.bin'").status == 0)

        let changes = try vhdx("track changes '\(set)' --since \(id)")
        #expect(changes.status == 0 && changes.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(8 << 20) \(1 << 20)", "\(changes)")
        #expect(try vhdx("track status '\(set)'").status == 0)
        let sealed = try vhdx("track seal '\(set)'")
        #expect(sealed.status == 0 && sealed.stdout.hasPrefix("vhdxct1:"))
        let info = try vhdx("info '\(set)'")
        #expect(info.status == 0 && info.stdout.contains("differencing"), "\(info.stdout)")
        #expect(try vhdx("map '\(set)'").stdout.contains("data"))
        #expect(try vhdx("check '\(set)'").status == 0)
        #expect(try vhdx("convert '\(set)' '\(dir)/flat.vhdx'").status == 0)
        #expect(try vhdx("compare '\(set)' '\(dir)/flat.vhdx'").status == 0)
        let raw = try Shell.run("'\(try vhdxBinary())' convert '\(set)' - | tail -c +$((8*1024*1024+1)) | head -c 1048576 | cmp - '\(dir)/a.bin'", allowFailure: true)
        #expect(raw.status == 0, "convert SET - reads the written bytes")
        // Chain options make no sense for a set: refused, not ignored.
        #expect(try vhdx("info '\(set)' --parent '\(dir)/flat.vhdx'").status != 0)
        // A set is never an output format.
        #expect(try vhdx("convert '\(dir)/flat.vhdx' '\(dir)/out.vhds'").status == 64)
    }

    @Test("list shows snapshots, parents, change IDs and the leaf; apply, delete and optimize report what they did")
    func listAndOperations() throws {
        let dir = try freshDir("setops")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let set = "\(dir)/s.vhds"
        #expect(try vhdx("set create '\(set)' 8M").status == 0)
        let a = try vhdx("set checkpoint '\(set)'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let b = try vhdx("set checkpoint '\(set)'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(GUID(text: a) != nil && GUID(text: b) != nil)
        let list = try vhdx("set list '\(set)'").stdout
        #expect(list.contains(a) && list.contains(b) && list.contains("parent {\(a)}") && list.contains("change ID vhdxct1:"), "\(list)")
        // A unique prefix of the id is enough, as in `list`'s text.
        let apply = try vhdx("set apply '\(set)' \(a.prefix(8)) --discard")
        #expect(apply.status == 0 && apply.stderr.contains("deleted"), "\(apply)")
        let del = try vhdx("set delete '\(set)' \(b) --keep-reference")
        #expect(del.status == 0 && del.stderr.contains("change ID still answers"), "\(del)")
        #expect(try vhdx("set list '\(set)'").stdout.contains("reference point"))
        #expect(try vhdx("set delete '\(set)' ffffffff").status == 1)
        let opt = try vhdx("set optimize '\(set)'")
        #expect(opt.status == 0 && opt.stderr.contains("1 entry"), "\(opt)")
        #expect(try vhdx("check '\(set)'").status == 0)
    }

    @Test("one writer: a checkpoint, a write or a delete while the set is held for writing gets \"in use\" and writes nothing")
    func oneWriter() throws {
        let dir = try freshDir("setlock")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let set = "\(dir)/s.vhds"
        #expect(try vhdx("set create '\(set)' 8M").status == 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: set))
        try withExtendedLifetime(try VHDSet.open(path: set, writable: true)) {
            let cp = try vhdx("set checkpoint '\(set)'")
            #expect(cp.status == 1 && cp.stderr.contains("in use"), "\(cp)")
            let w = try vhdx("write '\(set)' --offset 0 --input /dev/null --length 0")
            #expect(w.status != 0 && w.stderr.contains("in use"), "\(w)")
            #expect(try vhdx("set delete '\(set)' 00000000").stderr.contains("in use"))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: set)) == before, "refused commands wrote nothing")
        #expect(try vhdx("set checkpoint '\(set)'").status == 0)
    }

    @Test("a backing file moved or modified outside the set: a clear error naming it; relink puts it right")
    func movedAndModified() throws {
        let dir = try freshDir("setrelink")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let set = "\(dir)/s.vhds"
        #expect(try vhdx("set create '\(set)' 8M").status == 0)
        let a = try vhdx("set checkpoint '\(set)'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let frozen: String
        do {
            let s = try VHDSet.open(path: set)
            let g = try #require(GUID(text: a))
            let entry = try #require(s.record.snapshot(g))
            frozen = s.absolute(entry.path)
        }
        let moved = "\(dir)/sub/moved.avhdx"
        try FileManager.default.createDirectory(atPath: "\(dir)/sub", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: frozen, toPath: moved)
        let missing = try vhdx("info '\(set)'")
        #expect(missing.status == 1 && missing.stderr.contains("missing") && missing.stderr.contains(frozen) && missing.stderr.contains("relink"), "\(missing.stderr)")
        #expect(try vhdx("check '\(set)'").status != 0)
        let relink = try vhdx("set relink '\(set)' \(a) '\(moved)'")
        #expect(relink.status == 0, "\(relink)")
        #expect(try vhdx("check '\(set)'").status == 0)

        // Modified outside the set: the frozen file written directly.
        #expect(try vhdx("write '\(moved)' --offset 0 --input /dev/zero --length 4096").status == 0)
        let modified = try vhdx("convert '\(set)' -")
        #expect(modified.status == 1 && modified.stderr.contains("modified outside the set") && modified.stderr.contains(moved), "\(modified.stderr)")
        #expect(try vhdx("set relink '\(set)' \(a) '\(moved)'").status == 1)
        #expect(try vhdx("set relink '\(set)' \(a) '\(moved)' --accept-modified").status == 0)
        #expect(try vhdx("convert '\(set)' -").status == 0)
        // Outside the set's folder: refused.
        #expect(try vhdx("set relink '\(set)' \(a) /etc/hostname").status == 1)
    }

    @Test("--folder puts every backing file in a folder of the set's; a folder outside it is refused")
    func defaultFolder() throws {
        let dir = try freshDir("setfolder")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let set = "\(dir)/s.vhds"
        #expect(try vhdx("set create '\(set)' 8M --folder disks/vm1").status == 0)
        #expect(try vhdx("write '\(set)' --offset 0 --pattern 0x61 --length 64K").status == 0)
        #expect(try vhdx("set checkpoint '\(set)'").status == 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/disks/vm1").filter { $0.hasSuffix(".avhdx") }
        #expect(files.count == 2, "\(files)")
        let list = try JSONSerialization.jsonObject(with: Data(try vhdx("set list --json '\(set)'").stdout.utf8)) as? [String: Any]
        #expect(list?["default-folder"] as? String == "disks/vm1")
        #expect(try vhdx("check '\(set)'").status == 0)
        for bad in ["../elsewhere", "/tmp", "a/../../b"] {
            let r = try vhdx("set create '\(dir)/t.vhds' 8M --folder '\(bad)'")
            #expect(r.status == 1 && r.stderr.contains("folder"), "\(bad): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/t.vhds"))
    }

    @Test("a .vhds of another program (Hyper-V's undocumented layout) is refused, named as such, and never written")
    func hyperVSet() throws {
        let dir = try freshDir("sethv")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let set = "\(dir)/hv.vhds"
        try Shell.run("head -c 266240 /dev/urandom > '\(set)'")
        let before = try Data(contentsOf: URL(fileURLWithPath: set))
        for cmd in ["set list", "set checkpoint", "info", "write", "check", "track changes"] {
            let extra = cmd == "write" ? " --offset 0 --input /dev/null --length 0" : cmd == "track changes" ? " --since vhdxct1:0:0:0:0" : ""
            let r = try vhdx("\(cmd) '\(set)'\(extra)")
            #expect(r.status != 0 && r.stderr.contains("Microsoft has not published"), "\(cmd): \(r.stderr)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: set)) == before)
    }

    @Test("set create --from takes a disk in the set's folder as it is, refuses one outside it or a differencing one")
    func createFrom() throws {
        let dir = try freshDir("setfrom")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try vhdx("create '\(dir)/d.vhdx' 8M").status == 0)
        try Shell.run("head -c 65536 /dev/urandom > '\(dir)/a.bin'")
        #expect(try vhdx("write '\(dir)/d.vhdx' --offset 0 --input '\(dir)/a.bin'").status == 0)
        #expect(try vhdx("set create '\(dir)/s.vhds' --from '\(dir)/d.vhdx'").status == 0)
        #expect(try vhdx("compare '\(dir)/s.vhds' '\(dir)/d.vhdx'").status == 0)
        #expect(try vhdx("track status '\(dir)/s.vhds'").stdout.contains("enabled"))
        #expect(try vhdx("create '\(dir)/c.avhdx' --parent '\(dir)/d.vhdx'").status == 0)
        #expect(try vhdx("set create '\(dir)/t.vhds' --from '\(dir)/c.avhdx'").stderr.contains("differencing"))
        let other = try freshDir("setfrom-other")
        defer { try? FileManager.default.removeItem(atPath: other) }
        #expect(try vhdx("set create '\(other)/s.vhds' --from '\(dir)/d.vhdx'").stderr.contains("folder"))
        #expect(try vhdx("set create '\(dir)/s.vhds' 8M").stderr.contains("already exists"))
    }
}
