import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

/// Hazards found by probing the `vhdx` binary: what it writes where, what it replaces, what it
/// prints, and how it explains a refusal. Each test failed before its fix.
@Suite("vhdx CLI hazards", .serialized)
struct CLIHazardTests {
    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    /// A fresh directory of its own, so names and temporaries of other tests never interfere.
    func scratchDir(_ name: String = #function) throws -> String {
        let dir = Fixtures.tempPath(name.filter { $0.isLetter || $0.isNumber })
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as! NSNumber).intValue
    }

    // MARK: 1. raw -> raw, and output names

    @Test func rawToRawIsASparseCopy() throws {
        let dir = try scratchDir()
        // 8 MiB of written zeros with 4 KiB of data at 1 MiB: the copy keeps the data, holes the rest.
        try Shell.run("cd '\(dir)' && head -c 8388608 /dev/zero > src.img && head -c 4096 /dev/urandom | dd of=src.img bs=4096 seek=256 conv=notrunc status=none")
        let r = try vhdx("convert '\(dir)/src.img' '\(dir)/out.img'")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Shell.run("cmp '\(dir)/src.img' '\(dir)/out.img'", allowFailure: true).status == 0)
        let blocks = try Shell.run("stat -c %b '\(dir)/out.img'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect((Int(blocks) ?? .max) * 512 <= 64 << 10, "the copy should be sparse, it holds \(blocks) sectors")
        let streamed = try Shell.run("'\(try vhdxBinary())' convert '\(dir)/src.img' - | sha256sum").stdout.prefix(64)
        #expect(String(streamed) == (try Shell.sha256(file: "\(dir)/src.img")))
    }

    @Test(arguments: ["vhd", "qcow2", "vmdk", "VHD", "vdi"])
    func unsupportedOutputFormatsAreRefused(_ ext: String) throws {
        let dir = try scratchDir("unsupported\(ext)")
        let out = "\(dir)/out.\(ext)"
        let r = try vhdx("convert '\(try Fixtures.path("dynamic.vhdx"))' '\(out)'")
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("not supported") && r.stderr.contains(".\(ext)"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func sourcesNamedAsOtherFormatsAreNotCopiedAsRaw() throws {
        let dir = try scratchDir()
        try Shell.run("cd '\(dir)' && head -c 2097152 /dev/zero > junk.vhdx && printf 'QFI\\373' > disk.qcow2 && head -c 1048576 /dev/zero >> disk.qcow2")
        let junk = try vhdx("convert '\(dir)/junk.vhdx' '\(dir)/out.raw'")
        #expect(junk.status == 1)
        #expect(junk.stderr.contains("not a VHDX file"), "\(junk.stderr)")
        let qcow = try vhdx("convert '\(dir)/disk.qcow2' '\(dir)/out.raw'")
        #expect(qcow.status == 64)
        #expect(qcow.stderr.contains("input is not supported"), "\(qcow.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out.raw"))
    }

    // MARK: 2. stale temporaries

    @Test func staleTemporariesOfDeadProcessesAreRemoved() throws {
        let dir = try scratchDir()
        // A PID that is certainly dead: a shell that has exited. And one that is alive: ours.
        let dead = try Shell.run("sh -c 'echo $$'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let stale = "\(dir)/.out.raw.tmp-\(dead)-12345"
        let live = "\(dir)/.out.raw.tmp-\(getpid())-67890"
        let other = "\(dir)/.else.raw.tmp-\(dead)-1"
        for p in [stale, live, other] { _ = FileManager.default.createFile(atPath: p, contents: Data("x".utf8)) }
        let r = try vhdx("convert '\(try Fixtures.path("fixed.vhdx"))' '\(dir)/out.raw'")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: stale), "a dead process's temporary is left")
        #expect(FileManager.default.fileExists(atPath: live), "a live process's temporary was removed")
        #expect(FileManager.default.fileExists(atPath: other), "another output's temporary was removed")
    }

    // MARK: 3. the destination in the source's chain

    @Test func convertRefusesADestinationInItsSourceChain() throws {
        let dir = try scratchDir()
        #expect(try vhdx("create '\(dir)/base.vhdx' 16M").status == 0)
        #expect(try vhdx("write '\(dir)/base.vhdx' --offset 0 --pattern 0x5a --length 1M").status == 0)
        #expect(try vhdx("create '\(dir)/child.avhdx' --parent '\(dir)/base.vhdx'").status == 0)
        try Shell.run("cd '\(dir)' && ln -s base.vhdx sym.vhdx && ln base.vhdx hard.vhdx")
        let before = try Shell.sha256(file: "\(dir)/base.vhdx")
        for dst in ["base.vhdx", "sym.vhdx", "hard.vhdx"] {
            let r = try vhdx("convert --force '\(dir)/child.avhdx' '\(dir)/\(dst)'")
            #expect(r.status == 1, "\(dst): \(r.stderr)")
            #expect(r.stderr.contains("chain"), "\(dst): \(r.stderr)")
        }
        #expect(try Shell.sha256(file: "\(dir)/base.vhdx") == before)
        #expect(try vhdx("info --chain '\(dir)/child.avhdx'").status == 0)
        let same = try vhdx("convert --force '\(dir)/child.avhdx' '\(dir)/child.avhdx'")
        #expect(same.status == 1 && same.stderr.contains("refusing"), "\(same.stderr)")
    }

    // MARK: 4. replacing an existing destination

    @Test func convertNeedsForceToReplaceAndKeepsTheMode() throws {
        let dir = try scratchDir()
        let out = "\(dir)/out.vhdx"
        try "precious".write(toFile: out, atomically: false, encoding: .utf8)
        chmod(out, 0o640)
        let refused = try vhdx("convert '\(try Fixtures.path("dynamic.vhdx"))' '\(out)'")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("already exists") && refused.stderr.contains("--force"), "\(refused.stderr)")
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "precious")
        let forced = try vhdx("convert --force '\(try Fixtures.path("dynamic.vhdx"))' '\(out)'")
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try mode(out) == 0o640)
        #expect(try vhdx("compare '\(try Fixtures.path("dynamic.vhdx"))' '\(out)'").status == 0)
    }

    // MARK: 5. create never clobbers a file that appeared meanwhile

    @Test func createDoesNotClobberAConcurrentCreator() throws {
        let dir = try scratchDir()
        // A 4 TiB disk with 1 MiB blocks has a 32 MiB BAT: long enough to slip a file in
        // between the existence check (the temporary has appeared) and the rename.
        let script = """
            cd '\(dir)'
            '\(try vhdxBinary())' create new.vhdx 4T --block-size 1M 2> err & pid=$!
            while ! ls -A | grep -q '^\\.new\\.vhdx\\.tmp-'; do sleep 0.001; done
            echo precious > new.vhdx
            wait $pid; echo "status=$?"
            """
        let r = try Shell.run(script, allowFailure: true)
        #expect(r.stdout.contains("status=1"), "\(r.stdout)")
        #expect(try String(contentsOfFile: "\(dir)/new.vhdx", encoding: .utf8) == "precious\n")
        let err = try String(contentsOfFile: "\(dir)/err", encoding: .utf8)
        #expect(err.contains("already exists"), "\(err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }.isEmpty)
    }

    @Test func noReplaceFallbackByLinkRefusesAnExistingName() throws {
        let dir = try scratchDir()
        _ = FileManager.default.createFile(atPath: "\(dir)/tmp", contents: Data("new".utf8))
        _ = FileManager.default.createFile(atPath: "\(dir)/taken", contents: Data("old".utf8))
        #expect(throws: VHDXError.self) { try renameNoReplace("\(dir)/tmp", "\(dir)/taken", useRenameat2: false) }
        #expect(try String(contentsOfFile: "\(dir)/taken", encoding: .utf8) == "old")
        try renameNoReplace("\(dir)/tmp", "\(dir)/free", useRenameat2: false)
        #expect(try String(contentsOfFile: "\(dir)/free", encoding: .utf8) == "new")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/tmp"))
    }

    // MARK: 6. untrusted strings in info

    @Test func infoEscapesControlAndBidiCharacters() throws {
        let dir = try scratchDir()
        let copy = try Fixtures.scratchCopy(try Fixtures.path("dynamic.vhdx"))
        // Creator (UTF-16LE at offset 8): "A", ESC "[2J", U+202E, "B".
        try Shell.run("printf '\\x41\\x00\\x1b\\x00\\x5b\\x00\\x32\\x00\\x4a\\x00\\x2e\\x20\\x42\\x00\\x00\\x00' | dd of='\(copy)' bs=1 seek=8 conv=notrunc status=none")
        let text = try vhdx("info '\(copy)'")
        #expect(text.status == 0, "\(text.stderr)")
        #expect(!text.stdout.contains("\u{1B}") && !text.stdout.contains("\u{202E}"), "\(text.stdout)")
        #expect(text.stdout.contains("creator: A\\x1b[2J\\u{202E}B"), "\(text.stdout)")
        let json = try vhdx("info --json '\(copy)'")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(j["creator"] as? String == "A\u{1B}[2J\u{202E}B")
        // A parent whose file name holds an escape sequence reaches the locator.
        let evil = "\(dir)/p\u{1B}]0;x\u{07}.vhdx"
        #expect(try vhdx("create '\(evil)' 16M").status == 0)
        #expect(try vhdx("create '\(dir)/c.avhdx' --parent '\(evil)'").status == 0)
        let child = try vhdx("info '\(dir)/c.avhdx'")
        #expect(!child.stdout.contains("\u{1B}") && !child.stdout.contains("\u{07}"), "\(child.stdout)")
        #expect(child.stdout.contains("p\\x1b]0;x\\x07.vhdx"), "\(child.stdout)")
        unlink(copy)
    }

    // MARK: 7. errors name the user's file

    @Test(arguments: ["convert '%SRC%' '%DIR%/out.raw'", "create --fixed '%DIR%/out.raw' 64M"])
    func outputErrorsNameTheUsersPath(_ command: String) throws {
        let dir = try scratchDir("outputErrors\(command.prefix(6))")
        let args = command.replacingOccurrences(of: "%SRC%", with: try Fixtures.path("iotest-dynamic-1G.vhdx"))
            .replacingOccurrences(of: "%DIR%", with: dir)
        // SIGXFSZ ignored (inherited through exec): writes past the limit fail with EFBIG.
        let r = try Shell.run("trap '' XFSZ; ulimit -f 1024; '\(try vhdxBinary())' \(args)", allowFailure: true)
        #expect(r.status == 1)
        #expect(!r.stderr.contains(".tmp-"), "\(r.stderr)")
        #expect(r.stderr.contains("\(dir)/out.raw") && r.stderr.contains("was not created"), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    // MARK: 8. parent resolution says why each path failed

    @Test func parentResolverGivesEachPathsRealReason() throws {
        let dir = try scratchDir()
        #expect(try vhdx("create '\(dir)/base.vhdx' 16M").status == 0)
        #expect(try vhdx("create '\(dir)/child.avhdx' --parent '\(dir)/base.vhdx'").status == 0)
        try Shell.run("cd '\(dir)' && mv base.vhdx moved.vhdx && ln -s loop base.vhdx && ln -s base.vhdx loop && printf 'hello' > text.txt && mkfifo fifo")
        let loop = try vhdx("info --chain '\(dir)/child.avhdx'")
        #expect(loop.status == 1)
        #expect(loop.stderr.contains("base.vhdx: symlink loop"), "\(loop.stderr)")
        #expect(!loop.stderr.contains("not found\n") && !loop.stderr.hasSuffix("not found"), "\(loop.stderr)")
        let long = try vhdx("info --chain '\(dir)/child.avhdx' --parent '\(dir)/\(String(repeating: "a", count: 300))'")
        #expect(long.stderr.contains("name too long"), "\(long.stderr)")
        let text = try vhdx("info --chain '\(dir)/child.avhdx' --parent '\(dir)/text.txt'")
        #expect(text.stderr.contains("text.txt: not a VHDX file"), "\(text.stderr)")
        #expect(!text.stderr.contains("5 bytes") && !text.stderr.contains("is 5"), "\(text.stderr)")
        for other in ["fifo", "."] {
            let r = try vhdx("info --chain '\(dir)/child.avhdx' --parent '\(dir)/\(other)'")
            #expect(r.status == 1)
            #expect(r.stderr.contains("not a regular file"), "\(other): \(r.stderr)")
        }
    }

    // MARK: 9, 10. sizes

    @Test(arguments: [("0.75G", "805306368"), ("1.5M", "1572864"), ("0.5K", "512"), ("0x10K", "16384"), ("2KiB", "2048"), ("7", "7")])
    func sizesAccepted(_ c: (String, String)) throws {
        let r = try vhdx("map --json --offset \(c.0) --length 1 '\(try Fixtures.path("iotest-dynamic-1G.vhdx"))'")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"offset\": \(c.1)"), "\(r.stdout)")
    }

    @Test(arguments: [("-5", "negative"), ("0.3K", "whole number of bytes"), ("10MB", "use M"), ("12Q", "unknown suffix"),
                      ("99999999999T", "too large"), (" ", "empty"), ("1.2.3", "not a number")])
    func sizesRefusedWithAReason(_ c: (String, String)) throws {
        let r = try vhdx("map --offset='\(c.0)' '\(try Fixtures.path("dynamic.vhdx"))'")
        #expect(r.status == 64)
        #expect(r.stderr.contains(c.1), "\(c.0): \(r.stderr)")
    }

    @Test func aNegativeSizeArgumentIsNamed() throws {
        // "-5" reads as an option, so SIZE looks missing: the error must still say why.
        let r = try vhdx("create '\(Fixtures.tempPath("neg.vhdx"))' -5")
        #expect(r.status == 64)
        #expect(r.stderr.contains("-5 is negative"), "\(r.stderr)")
    }

    @Test func helpShowsHumanDefaults() throws {
        let r = try vhdx("create --help")
        #expect(!r.stdout.contains("ByteCount"), "\(r.stdout)")
        #expect(r.stdout.contains("(default: 1M)"), "\(r.stdout)")
        #expect(try vhdx("convert --help").stdout.contains("(default: 32M)"))
    }

    // MARK: 11. no arguments

    @Test func noArgumentsIsAUsageError() throws {
        let r = try vhdx("")
        #expect(r.status == 64)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("USAGE"), "\(r.stderr)")
    }
}
