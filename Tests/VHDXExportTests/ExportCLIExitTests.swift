import Foundation
import Testing
import VHDX
import VHDXExport
import VHDXTestSupport

/// Exit codes and messages of the export commands where the README documents them: exports
/// that do not follow each other, an image apply cannot write to, a failing read, a stream
/// handed to the image commands, and `apply -`'s spool of standard input.
@Suite struct ExportCLIExitTests {
    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    func fileData(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    @Test("restore FULL FULL: exit 3 (the exports do not follow each other), nothing written")
    func fullAfterFull() throws {
        let s = try CorruptionCase()
        let out = s.path("out.vhdx")
        for args in ["restore '\(out)' '\(s.fullPath)' '\(s.fullPath)'", "restore '\(out)' '\(s.fullPath)' '\(s.fullBPath)'",
                     "verify '\(try s.restored("image.vhdx", [s.fullPath]))' '\(s.fullPath)' '\(s.fullPath)'"] {
            let r = try vhdx(args)
            #expect(r.status == 3, "vhdx \(args): \(r.stderr)")
            #expect(r.stderr.contains("wrong base") && r.stderr.contains("full export cannot follow"), "\(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("apply onto a raw image: exit 2 (not an image restored or exported by vhdx), the file untouched")
    func applyOntoRaw() throws {
        let s = try CorruptionCase()
        let raw = s.path("disk.img")
        #expect(try vhdx("restore '\(raw)' '\(s.fullPath)'").status == 0)
        let before = fileData(raw)
        let r = try vhdx("apply '\(raw)' '\(s.inc1Path)'")
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("not an export") && r.stderr.contains("not a VHDX"), "\(r.stderr)")
        #expect(fileData(raw) == before)
        // A missing image stays an error of its own (exit 1).
        #expect(try vhdx("apply '\(s.path("missing.vhdx"))' '\(s.inc1Path)'").status == 1)
    }

    @Test("a failing read of an input stream is an I/O error (exit 1; verify: 2, the check could not run), not an invalid request")
    func readFailure() throws {
        let s = try CorruptionCase()
        let image = try s.restored("image.vhdx", [s.fullPath])
        // Standard input open for writing only: every read fails (EBADF).
        let wo = s.path("write-only")
        for (args, code) in [("restore '\(s.path("out.vhdx"))' -", Int32(1)), ("apply '\(image)' -", 1), ("verify '\(image)' -", 2)] {
            let r = try vhdx("\(args) 0>>'\(wo)'")
            #expect(r.status == code, "vhdx \(args): \(r.stderr)")
            #expect(r.stderr.contains("I/O error") && r.stderr.contains("- (standard input)"), "vhdx \(args): \(r.stderr)")
            #expect(!r.stderr.contains("invalid request"), "vhdx \(args): \(r.stderr)")
        }
        #expect(try s.listing().sorted() == ["image.vhdx", "write-only"])
    }

    @Test("info, map and check on an export stream say it is one and name verify/restore (exit 1, 1, 2 as the README gives any non-VHDX file)")
    func streamToImageCommands() throws {
        let s = try CorruptionCase()
        for (command, code) in [("info", Int32(1)), ("map", 1), ("check", 2), ("info --json", 1), ("check --json", 2)] {
            let r = try vhdx("\(command) '\(s.fullPath)'")
            #expect(r.status == code, "\(command): \(r.stderr)")
            // check reports it as its finding (stdout, JSON with --json), the others on stderr.
            let said = command.hasPrefix("check") ? r.stdout : r.stderr
            #expect(said.contains("an export stream") && said.contains("vhdx verify") && said.contains("vhdx restore"), "\(command): \(said)")
            #expect(!said.contains("found 76686478"), "\(command): \(said)")
            if command == "check --json" {
                let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
                #expect(json?["result"] as? String == "corrupt", "\(r.stdout)")
            }
        }
    }

    @Test("apply - on truncated standard input names standard input, not its spool, and leaves no spool")
    func truncatedStdin() throws {
        let s = try CorruptionCase()
        let image = try s.restored("image.vhdx", [s.fullPath])
        let cut = try s.save(Array(s.inc1.dropLast(100)), as: "cut")
        let before = try s.listing()
        let r = try vhdx("apply '\(image)' - < '\(cut)'")
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("- (standard input)") && r.stderr.contains("truncated"), "\(r.stderr)")
        #expect(!r.stderr.contains(".incoming"), "\(r.stderr)")
        #expect(try s.listing() == before)
    }

    @Test("apply - killed (SIGKILL) while spooling leaves its spool; the next apply onto that image removes it, never a live process's")
    func killedSpoolIsRemoved() throws {
        let s = try CorruptionCase()
        let image = try s.restored("image.vhdx", [s.fullPath])
        let fifo = s.path("fifo")
        // The apply reads the fifo: part of the incremental arrives, then the writer holds it open.
        let script = """
            cd '\(s.dir)' && mkfifo fifo || exit 1
            ( '\(try vhdxBinary())' apply image.vhdx - < fifo > /dev/null 2>&1 & echo $! > pid; wait ) &
            exec 3> '\(fifo)'; head -c 100000 '\(s.inc1Path)' >&3
            for i in $(seq 600); do [ -s '\(s.dir)/pid' ] && ls -a '\(s.dir)' | grep -q '^\\.image\\.vhdx\\.incoming\\.tmp-' && break; sleep 0.05; done
            kill -9 "$(cat '\(s.dir)/pid')"; exec 3>&-; wait
            """
        let run = try Shell.run(script)
        let listing = try s.listing()
        let spools = listing.filter { $0.hasPrefix(".image.vhdx.incoming.tmp-") }
        #expect(spools.count == 1, "the killed apply's spool: \(listing) \(run)")
        let live = s.path(".image.vhdx.incoming.tmp-\(getpid())-1")
        _ = FileManager.default.createFile(atPath: live, contents: Data("x".utf8))
        // Any apply onto that image clears them (this one reads a file).
        let r = try vhdx("apply '\(image)' '\(s.inc1Path)'")
        #expect(r.status == 0, "\(r.stderr)")
        let left = try s.listing().filter { $0.contains(".incoming") }
        #expect(left == [".image.vhdx.incoming.tmp-\(getpid())-1"], "spools left: \(left)")
        #expect(try Verifier.verify(image, against: [s.fullPath, s.inc1Path]).identical)
    }
}
