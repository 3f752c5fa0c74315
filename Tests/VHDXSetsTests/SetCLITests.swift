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
        let chainOption = try vhdx("info '\(set)' --parent '\(dir)/flat.vhdx'")
        #expect(chainOption.status == 1 && chainOption.stderr.contains("do not apply to a VHD Set"), "exit \(chainOption.status): \(chainOption.stderr)")
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
            #expect(w.status == 1 && w.stderr.contains("in use"), "\(w)")
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
        // A snapshot's file missing: the check could not run on it (README: check exit 1, "missing").
        let check = try vhdx("check '\(set)'")
        #expect(check.status == 1 && check.stderr.contains("missing"), "exit \(check.status): \(check.stdout)\(check.stderr)")
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
            let extra = cmd == "write" ? " --offset 0 --input /dev/null --length 0" : cmd == "track changes" ? " --since vhdxct1:\(String(repeating: "0", count: 32)):\(String(repeating: "0", count: 32)):0:0" : ""
            let r = try vhdx("\(cmd) '\(set)'\(extra)")
            // Unsupported content is an error (1) for every command, check included (it could not run).
            #expect(r.status == 1 && r.stderr.contains("Microsoft has not published"), "\(cmd): exit \(r.status): \(r.stderr)")
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

    // MARK: one rule: a .vhds names a set everywhere (issue 16)

    @Test("outputs named .vhds are refused (64) unless the command makes a set: create, create --parent, convert, export, restore")
    func vhdsOutputsAreRefused() throws {
        let dir = try freshDir("setvhdsout")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let disk = "\(dir)/d.vhdx"
        #expect(try vhdx("create '\(disk)' 8M").status == 0)
        #expect(try vhdx("track enable '\(disk)'").status == 0)
        #expect(try vhdx("export '\(disk)' '\(dir)/full.vxs'").status == 0)
        let cases = [
            ("create '\(dir)/o.vhds' 8M", "vhdx set create"),
            ("create '\(dir)/o.VHDS' --parent '\(disk)'", "vhdx set create"),
            ("convert '\(disk)' '\(dir)/o.vhds'", "vhdx set create"),
            ("export '\(disk)' '\(dir)/o.vhds'", "VHD Set"),
            ("restore '\(dir)/o.vhds' '\(dir)/full.vxs'", "VHD Set"),
        ]
        for (command, expected) in cases {
            let r = try vhdx(command)
            #expect(r.status == 64 && r.stderr.contains(expected), "\(command): exit \(r.status) \(r.stderr)")
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.lowercased().contains(".vhds") }
        #expect(left.isEmpty, "\(left)")
        // A set is made by `set create`, and then opens as one.
        #expect(try vhdx("set create '\(dir)/o.vhds' 8M").status == 0)
        #expect(try vhdx("info '\(dir)/o.vhds'").status == 0)
    }

    @Test("a set given to resize, compact, merge, reparent or create --parent says it is a set and which set command to use (64), untouched")
    func setsGivenToSingleFileCommands() throws {
        let dir = try freshDir("setsinglefile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let set = "\(dir)/s.vhds"
        #expect(try vhdx("set create '\(set)' 8M").status == 0)
        #expect(try vhdx("set checkpoint '\(set)'").status == 0)
        #expect(try vhdx("create '\(dir)/d.vhdx' 8M").status == 0)
        #expect(try vhdx("create '\(dir)/c.avhdx' --parent '\(dir)/d.vhdx'").status == 0)
        // The same set under another name is recognised by its signature.
        try FileManager.default.copyItem(atPath: set, toPath: "\(dir)/copy.img")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        let before = try files.map { try Shell.sha256(file: "\(dir)/\($0)") }
        let cases = [
            ("resize '\(set)' 16M", "not supported"),
            ("resize '\(dir)/copy.img' 16M", "set signature"),
            ("compact '\(set)'", "vhdx set optimize"),
            ("merge '\(set)'", "vhdx set delete"),
            ("merge '\(dir)/c.avhdx' --into '\(set)'", "vhdx set delete"),
            ("reparent '\(set)' --parent '\(dir)/d.vhdx'", "vhdx set relink"),
            ("reparent '\(dir)/c.avhdx' --parent '\(set)'", "not a parent"),
            ("create '\(dir)/n.avhdx' --parent '\(set)'", "vhdx set checkpoint"),
        ]
        for (command, expected) in cases {
            let r = try vhdx(command)
            #expect(r.status == 64 && r.stderr.contains("VHD Set") && r.stderr.contains(expected) && !r.stderr.contains("corrupt"),
                    "\(command): exit \(r.status) \(r.stderr)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == files)
        #expect(try files.map { try Shell.sha256(file: "\(dir)/\($0)") } == before)
    }

    @Test("a .vhds that is not our set says what it is: empty, a VHDX disk, unrecognised content (maybe Hyper-V's, never asserted)")
    func notOurSetSaysWhatItIs() throws {
        let dir = try freshDir("setwhatisit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data().write(to: URL(fileURLWithPath: "\(dir)/empty.vhds"))
        try Shell.run("head -c 1048576 /dev/urandom > '\(dir)/raw.vhds' && head -c 10 /dev/urandom > '\(dir)/tiny.vhds'")
        #expect(try vhdx("create '\(dir)/d.vhdx' 8M").status == 0)
        try FileManager.default.copyItem(atPath: "\(dir)/d.vhdx", toPath: "\(dir)/disk.vhds")
        let cases = [("empty.vhds", "the file is empty"), ("raw.vhds", "unrecognised content"), ("tiny.vhds", "unrecognised content"),
                     ("disk.vhds", "this is a VHDX disk")]
        for (name, expected) in cases {
            let r = try vhdx("info '\(dir)/\(name)'")
            #expect(r.status == 1 && r.stderr.contains("not a VHD Set"), "\(name): \(r.stderr)")
            #expect(r.stderr.contains(expected), "\(name): \(r.stderr)")
            // Only content we cannot recognise may be Hyper-V's, and it is not called that outright.
            #expect(r.stderr.contains("Hyper-V") == (expected == "unrecognised content"), "\(name): \(r.stderr)")
            #expect(!r.stderr.contains("Hyper-V's own sets"), "\(name): \(r.stderr)")
        }
    }

    @Test("compare exits 2 (error), not 1 (different), when a set cannot be opened")
    func compareOfAnUnopenableSetIsAnError() throws {
        let dir = try freshDir("setcompare")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let set = "\(dir)/s.vhds"
        #expect(try vhdx("set create '\(set)' 8M").status == 0)
        #expect(try vhdx("compare '\(set)' '\(set)'").status == 0)
        let leaf = try #require(try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasSuffix(".avhdx") })
        try FileManager.default.moveItem(atPath: "\(dir)/\(leaf)", toPath: "\(dir)/elsewhere.bin")
        for command in ["compare '\(set)' '\(set)'", "compare '\(set)' '\(dir)/elsewhere.bin'", "compare '\(dir)/elsewhere.bin' '\(set)'",
                        "compare --json '\(set)' '\(dir)/elsewhere.bin'"] {
            let r = try vhdx(command)
            #expect(r.status == 2 && r.stderr.contains("missing"), "\(command): exit \(r.status) \(r.stderr)")
        }
        try Data().write(to: URL(fileURLWithPath: "\(dir)/empty.vhds"))
        #expect(try vhdx("compare '\(dir)/empty.vhds' '\(dir)/empty.vhds'").status == 2)
    }

    @Test("set create: --granule/--history out of range are usage errors (64), nothing created; a FIFO as SET is refused")
    func setCreateArguments() throws {
        let dir = try freshDir("setcreateargs")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for option in ["--history 0", "--history 65", "--granule 3K", "--granule 64M", "--granule 8M --block-size 4M"] {
            let r = try vhdx("set create '\(dir)/s.vhds' 16M \(option)")
            #expect(r.status == 64, "\(option): exit \(r.status) \(r.stderr)")
        }
        #expect(try vhdx("create '\(dir)/d.vhdx' 8M --block-size 1M").status == 0)
        #expect(try vhdx("set create '\(dir)/f.vhds' --from '\(dir)/d.vhdx' --granule 2M").status == 64)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["d.vhdx"])
        try Shell.run("mkfifo '\(dir)/fifo.vhds'")
        let r = try vhdx("set create '\(dir)/fifo.vhds' 8M --force")
        #expect(r.status == 1 && r.stderr.contains("not a regular file"), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["d.vhdx", "fifo.vhds"])
        #expect(try vhdx("set create '\(dir)/ok.vhds' 16M --granule 4K --history 1").status == 0)
    }
}
