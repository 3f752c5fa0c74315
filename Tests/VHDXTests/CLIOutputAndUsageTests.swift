import Foundation
import Testing
import VHDXTestSupport

/// What the `vhdx` binary writes over, and what it tells the user (issue 16): outputs that are
/// not regular files are never replaced, hints name only options the running command accepts,
/// `--help` lists every exit code, `check --json` answers in JSON also when it cannot run, and
/// `write` refuses an input shorter than `--length`. Each failed before its fix.
@Suite("vhdx CLI outputs and usage", .serialized)
struct CLIOutputAndUsageTests {
    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    func scratchDir(_ name: String = #function) throws -> String {
        let dir = Fixtures.tempPath(name.filter { $0.isLetter || $0.isNumber })
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// `stat -c %F`: "fifo", "character special file", "socket", "directory", "regular file"…
    func kind(_ path: String) throws -> String {
        try Shell.run("stat -c %F '\(path)'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: --force never replaces a device, FIFO, socket or directory

    /// Makes a node of `kind` at `path`; a character device only where mknod is allowed (root),
    /// else false (the other kinds still run). Never a real device's path: run against a
    /// regressed binary as root, the test must not replace /dev/null for the whole machine.
    func makeNode(_ kind: String, at path: String) throws -> Bool {
        switch kind {
        case "fifo": try Shell.run("mkfifo '\(path)'")
        case "char": return try Shell.run("mknod '\(path)' c 1 3", allowFailure: true).status == 0  // the null device's numbers
        case "socket": try Shell.run("python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('\(path)')\"")
        case "dir": try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        default: Issue.record("unknown node kind \(kind)")
        }
        return true
    }

    @Test("create, convert, export, restore and set create refuse an output that is a FIFO, device, socket or directory, also with --force")
    func nonRegularOutputsAreRefused() throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let disk = "\(dir)/disk.vhdx"
        #expect(try vhdx("create '\(disk)' 8M").status == 0)
        #expect(try vhdx("track enable '\(disk)'").status == 0)
        #expect(try vhdx("write '\(disk)' --offset 1M --pattern 0xa5 --length 64K").status == 0)
        #expect(try vhdx("export '\(disk)' '\(dir)/full.vxs'").status == 0)
        #expect(try vhdx("export '\(disk)' '\(dir)/full.vhdx'").status == 0)
        // %V: a node named .vhdx, %A: .avhdx, %R: any other name (raw image, stream, set file).
        let commands = [
            "create %V 8M --force", "create %R 8M --force", "create %A --parent '\(disk)' --force",
            "convert '\(disk)' %V --force", "convert '\(disk)' %R --force",
            "export '\(disk)' %V --force", "export '\(disk)' %R --force", "export '\(disk)' %A --base '\(dir)/full.vhdx' --force",
            "restore %V '\(dir)/full.vxs' --force", "restore %R '\(dir)/full.vxs' --force", "restore %R '\(dir)/full.vhdx' --force",
            "set create %R 8M --force",
        ]
        var kinds = 0
        for k in ["fifo", "char", "socket", "dir"] {
            let nodes = ["V": "\(dir)/\(k).vhdx", "A": "\(dir)/\(k).avhdx", "R": "\(dir)/\(k).img"]
            guard try nodes.values.allSatisfy({ try makeNode(k, at: $0) }) else { continue }
            kinds += 1
            let before = try nodes.mapValues { try kind($0) }
            for c in commands {
                var command = c
                for (key, path) in nodes { command = command.replacingOccurrences(of: "%\(key)", with: "'\(path)'") }
                let r = try vhdx(command)
                #expect(r.status == 1 && r.stderr.contains("not a regular file"), "\(k): \(command): exit \(r.status) \(r.stderr)")
                #expect(try nodes.mapValues { try kind($0) } == before, "\(k): \(command) changed a node")
            }
        }
        #expect(kinds >= 3)
        // Nothing was left beside the nodes: no temporaries, no backing file of a set.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") || $0.contains("_") }
        #expect(left.isEmpty, "\(left)")
    }

    // MARK: hints name only options the running command accepts

    @Test("a parent mismatch: info/convert hint --ignore-id-mismatch; export and restore, which lack it, point at reparent and check --chain")
    func hintsNameOnlyAcceptedOptions() throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try vhdx("create '\(dir)/base.vhdx' 8M").status == 0)
        #expect(try vhdx("track enable '\(dir)/base.vhdx'").status == 0)
        #expect(try vhdx("create '\(dir)/top.avhdx' --parent '\(dir)/base.vhdx'").status == 0)
        // Writing the parent changes its DataWriteGuid: the child no longer links to it.
        #expect(try vhdx("write '\(dir)/base.vhdx' --offset 0 --pattern 1 --length 4K").status == 0)

        for command in ["export '\(dir)/top.avhdx' '\(dir)/out.vxs'", "restore '\(dir)/out.vhdx' '\(dir)/top.avhdx'"] {
            let r = try vhdx(command)
            // README exit codes: a chain that cannot be opened is an error (1), not a damaged export.
            #expect(r.status == 1 && r.stderr.contains("parent mismatch"), "\(command): exit \(r.status): \(r.stderr)")
            #expect(!r.stderr.contains("--ignore-id-mismatch accepts"), "\(command) hints an option it refuses: \(r.stderr)")
            #expect(r.stderr.contains("hint: vhdx check --chain") && r.stderr.contains("vhdx reparent"), "\(command): \(r.stderr)")
            // The options it does name, it accepts.
            let help = try vhdx(command.split(separator: " ").first.map { "\($0) --help" } ?? "")
            #expect(!help.stdout.contains("--ignore-id-mismatch"), "\(help.stdout)")
        }
        let convert = try vhdx("convert '\(dir)/top.avhdx' '\(dir)/flat.raw'")
        #expect(convert.status == 1 && convert.stderr.contains("hint: --ignore-id-mismatch accepts it anyway"), "\(convert.stderr)")
        #expect(try vhdx("convert '\(dir)/top.avhdx' '\(dir)/flat.raw' --ignore-id-mismatch").status == 0)

        // A parent that is gone: --parent/--search-dir where accepted, reparent where not.
        try FileManager.default.moveItem(atPath: "\(dir)/base.vhdx", toPath: "\(dir)/moved.vhdx")
        let map = try vhdx("map '\(dir)/top.avhdx'")
        #expect(map.stderr.contains("hint: use --parent PATH or --search-dir DIR"), "\(map.stderr)")
        let export = try vhdx("export '\(dir)/top.avhdx' '\(dir)/out.vxs'")
        #expect(export.stderr.contains("parent not found") && !export.stderr.contains("--search-dir")
                && export.stderr.contains("hint: vhdx reparent"), "\(export.stderr)")
    }

    // MARK: exit codes and messages as the README documents them

    @Test("vhdx --help lists every documented exit code")
    func helpListsEveryExitCode() throws {
        let help = try vhdx("--help").stdout.replacingOccurrences(of: "\n", with: " ")
        for code in ["0 success", "1 error", "64 bad usage", "2 corruption", "3 only leaked space", "4 the change ID cannot", "4 tracking cannot answer",
                     "2 an input is damaged", "3 refused", "3 the exports do not follow each other",
                     // the backup commands' own codes beside 0/1/64: export's 2 and 3, compare's and verify's 1
                     "2 the base is damaged or not an export", "3 the base is another disk's", "1 different", "2 an input could not be opened"] {
            #expect(help.contains(code), "help lacks \(code.debugDescription): \(help)")
        }
    }

    @Test("check --json prints its JSON object, result \"error\", also when the image cannot be opened")
    func checkJSONWhenTheImageCannotBeOpened() throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data().write(to: URL(fileURLWithPath: "\(dir)/empty.vhds"))
        for image in ["\(dir)/missing.vhdx", "\(dir)/empty.vhds"] {
            let r = try vhdx("check --json --chain '\(image)'")
            #expect(r.status == 1, "\(image): \(r.stderr)")
            let j = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(image): \(r.stdout)")
            #expect(j["result"] as? String == "error")
            #expect(j["filename"] as? String == image)
            #expect((j["findings"] as? [Any])?.isEmpty == true)
            #expect((j["error"] as? String)?.isEmpty == false)
            #expect(!r.stderr.isEmpty, "the reason goes to stderr as well")
        }
    }

    @Test("write refuses an input that ends before --length (a pipe or a file), writing nothing")
    func writeRefusesAShortInput() throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = "\(dir)/w.vhdx"
        #expect(try vhdx("create '\(image)' 32M").status == 0)
        try Shell.run("head -c 1000 /dev/urandom > '\(dir)/in1000' && head -c 9000000 /dev/urandom > '\(dir)/in9M'")
        let before = try Shell.sha256(file: image)
        let cases = [
            ("cat '\(dir)/in1000' | '\(try vhdxBinary())' write '\(image)' --offset 0 --input - --length 4096", "after 1000 of 4096 bytes"),
            ("'\(try vhdxBinary())' write '\(image)' --offset 0 --input '\(dir)/in1000' --length 4096", "after 1000 of 4096 bytes"),
            // Longer than the first staging buffer: the spool file path.
            ("cat '\(dir)/in9M' | '\(try vhdxBinary())' write '\(image)' --offset 0 --input - --length 10000000", "after 9000000 of 10000000 bytes"),
        ]
        for (command, expected) in cases {
            let r = try Shell.run(command, allowFailure: true)
            #expect(r.status == 1 && r.stderr.contains("input ended \(expected)") && r.stderr.contains("nothing was written"), "\(command): \(r.stderr)")
            #expect(try Shell.sha256(file: image) == before, "\(command) wrote")
        }
        // A pipe holding at least --length bytes is written, exactly --length of them.
        let ok = try Shell.run("cat '\(dir)/in9M' | '\(try vhdxBinary())' write '\(image)' --offset 1M --input - --length 8888888", allowFailure: true)
        #expect(ok.status == 0, "\(ok.stderr)")
        let back = try Shell.run("'\(try vhdxBinary())' convert '\(image)' - | tail -c +1048577 | head -c 8888889 | sha256sum").stdout.prefix(64)
        let expected = try Shell.run("{ head -c 8888888 '\(dir)/in9M'; head -c 1 /dev/zero; } | sha256sum").stdout.prefix(64)
        #expect(back == expected)
    }
}
