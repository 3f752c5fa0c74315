import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

/// The hazards probing found: FIFOs that hung every command, qemu and `vhdx` writing one image
/// at once, writes trusting corrupt structures, requests half applied. Each case fails on the
/// code before its fix (a hang shows up as the `timeout` exit, 124).
@Suite("Hazards", .serialized)
struct HazardTests {
    func vhdx(_ args: String, timeout: Int = 10) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("timeout -s KILL \(timeout) '\(try vhdxBinary())' \(args) < /dev/null", allowFailure: true)
    }

    func scratchDir(_ name: String = #function) throws -> String {
        let dir = Fixtures.tempPath(name.filter { $0.isLetter })
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    // MARK: - FIFOs

    @Test("a FIFO as the image gets a clear error at once from every command")
    func fifoAsImage() throws {
        let dir = try scratchDir()
        try Shell.run("mkfifo '\(dir)/f.vhdx'")
        for command in ["info", "check", "map", "write --offset 0 --length 1 --zero", "resize 1G", "compact",
                        "convert", "merge"] {
            let args = command == "convert" ? "convert '\(dir)/f.vhdx' '\(dir)/out.raw'" : "\(command.split(separator: " ").first!) '\(dir)/f.vhdx' \(command.split(separator: " ").dropFirst().joined(separator: " "))"
            let start = Date()
            let r = try vhdx(args)
            #expect(r.status == 1, "\(command): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("FIFO"), "\(command): \(r.stderr)")
            #expect(Date().timeIntervalSince(start) < 5, "\(command) took \(Date().timeIntervalSince(start)) s")
        }
    }

    /// base.vhdx ← child.avhdx in `dir`, the child written once.
    func chain(in dir: String) throws {
        #expect(try vhdx("create '\(dir)/base.vhdx' 64M").status == 0)
        #expect(try vhdx("write '\(dir)/base.vhdx' --offset 0 --length 1M --pattern 0x11").status == 0)
        #expect(try vhdx("create '\(dir)/child.avhdx' --parent '\(dir)/base.vhdx'").status == 0)
        #expect(try vhdx("write '\(dir)/child.avhdx' --offset 1M --length 1M --pattern 0x22").status == 0)
    }

    @Test("a FIFO where the parent should be (locator, --parent, --search-dir, reparent) is an error, nothing written")
    func fifoAsParent() throws {
        let dir = try scratchDir()
        try chain(in: dir)
        let child = "\(dir)/child.avhdx"
        try Shell.run("mv '\(dir)/base.vhdx' '\(dir)/real-base.vhdx' && mkfifo '\(dir)/base.vhdx' && mkdir '\(dir)/search' && mkfifo '\(dir)/search/base.vhdx'")
        let before = try bytes(child)
        for args in ["info --chain '\(child)'",
                     "write '\(child)' --offset 0 --length 4K --pattern 1",
                     "write '\(child)' --offset 0 --length 4K --pattern 1 --parent '\(dir)/search/base.vhdx'",
                     "info --chain '\(child)' --parent '\(dir)/base.vhdx'",
                     "check --chain '\(child)' --search-dir '\(dir)/search'",
                     "reparent '\(child)' --parent '\(dir)/search/base.vhdx'"] {
            let r = try vhdx(args)
            #expect(r.status == 1, "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("FIFO"), "\(args): \(r.stderr)")
        }
        #expect(try bytes(child) == before, "the child was modified")
        // The real parent still works through --parent.
        #expect(try vhdx("check --chain '\(child)' --parent '\(dir)/real-base.vhdx'").status == 0)
    }

    // MARK: - qemu beside vhdx

    @Test("vhdx refuses an image qemu-io holds open for writing, and qemu-io refuses one vhdx is writing")
    func qemuLocks() throws {
        try Shell.require("qemu-io")
        let dir = try scratchDir()
        let image = "\(dir)/e.vhdx"
        #expect(try vhdx("create '\(image)' 64M").status == 0)
        let before = try bytes(image)
        // qemu-io keeps the image open while its stdin stays open.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = ["qemu-io", "-f", "vhdx", image]
        let stdin = Pipe()
        holder.standardInput = stdin
        holder.standardOutput = FileHandle.nullDevice
        holder.standardError = FileHandle.nullDevice
        try holder.run()
        defer { holder.terminate() }
        var held = false
        for _ in 0..<100 where !held {
            held = (try? String(contentsOfFile: "/proc/locks", encoding: .utf8))?.contains(":\(try inode(image)) ") == true
            if !held { usleep(20_000) }
        }
        #expect(held, "qemu-io did not lock the image")
        let w = try vhdx("write '\(image)' --offset 0 --length 1M --pattern 7")
        #expect(w.status == 1 && w.stderr.contains("in use"), "\(w.status) \(w.stderr)")
        // Readers refuse too, as qemu-img info does: the image may change under them.
        let i = try vhdx("info '\(image)'")
        #expect(i.status == 1 && i.stderr.contains("in use"), "\(i.status) \(i.stderr)")
        #expect(try bytes(image) == before)
        try stdin.fileHandleForWriting.close()
        holder.waitUntilExit()

        // vhdx writing (held open by an input pipe that stays open) → qemu-io refuses.
        try Shell.run("mkfifo '\(dir)/in'")
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: try vhdxBinary())
        writer.arguments = ["write", image, "--offset", "0", "--input", "\(dir)/in"]
        try writer.run()
        let feed = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/in"))
        usleep(300_000)
        let q = try Shell.run("qemu-io -f vhdx -c 'write -P 9 0 4k' '\(image)'", allowFailure: true)
        #expect(q.status != 0 && (q.stderr + q.stdout).contains("lock"), "\(q.status) \(q.stderr)")
        try feed.write(contentsOf: Data(repeating: 0x33, count: 4096))
        try feed.close()
        writer.waitUntilExit()
        #expect(writer.terminationStatus == 0)
        let check = try Shell.run("qemu-img check -f vhdx '\(image)'", allowFailure: true)
        #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
        let read = try Shell.run("qemu-io -r -f vhdx -c 'read -P 0x33 0 4k' '\(image)'", allowFailure: true)
        #expect(read.status == 0 && !read.stdout.contains("Pattern verification failed"), "\(read.stdout)")
    }

    func inode(_ path: String) throws -> UInt64 {
        var st = stat()
        guard stat(path, &st) == 0 else { throw TestFailure("stat \(path)") }
        return UInt64(st.st_ino)
    }

    // MARK: - Writes never trust a damaged image

    @Test("a BAT entry or log past the end of file: every writing command refuses, byte-identical; check reports it")
    func corruptImageRefusesWrites() throws {
        try #require(!CorruptionCorpusTests.base.isEmpty)
        let dir = try scratchDir()
        let cases: [(String, [UInt8])] = [
            ("bat", { var b = CorruptionCorpusTests.base; CorruptionCorpusTests.put64(&b, CorruptionCorpusTests.bat + 8, 6 | (545_000 << 20)); return b }()),
            ("log", CorruptionCorpusTests.header { b, h in CorruptionCorpusTests.put64(&b, h + 72, 100 << 30) }(CorruptionCorpusTests.base)),
        ]
        for (name, image) in cases {
            let path = "\(dir)/\(name).vhdx"
            try Data(image).write(to: URL(fileURLWithPath: path))
            for args in ["write '\(path)' --offset 5M --length 1M --pattern 1", "write '\(path)' --offset 0 --length 64M --zero",
                         "resize '\(path)' 16G", "compact '\(path)'"] {
                let r = try vhdx(args)
                #expect(r.status == 1, "\(name): \(args): \(r.status) \(r.stderr)")
                #expect(r.stderr.contains("past the end of the file"), "\(name): \(args): \(r.stderr)")
                #expect(try bytes(path) == image, "\(name): \(args) modified the file")
            }
            let c = try vhdx("check '\(path)'")
            #expect(c.status == 2 && c.stdout.contains("past the end of the file"), "\(name): \(c.stdout)")
            let repair = try vhdx("check --repair '\(path)'")
            #expect(repair.status == 2 && repair.stdout.contains("not repaired:"), "\(name): \(repair.stdout)")
            #expect(try bytes(path) == image, "\(name): check --repair modified the file")
        }
    }

    @Test("no damaged image of the corpus makes a write grow the file without bound or cross-link blocks",
          arguments: CorruptionCorpusTests.cases)
    func writesOnCorpus(_ c: CorruptionCorpusTests.Case) throws {
        let original = c.mutate(CorruptionCorpusTests.base)
        let storage = MemoryStorage(original, writable: true, maxSize: 1 << 40)
        let image: VHDXFile
        do { image = try VHDXFile(storage: storage) } catch {
            #expect(storage.bytes == original, "a refused writable open wrote to the file")
            return
        }
        let size = image.virtualSize
        for offset in [0, 5 << 20, 100 << 20, size - min(size, 1 << 20)] where offset < size {
            try? image.write([UInt8](repeating: 0x5C, count: Int(min(1 << 20, size - offset))), at: offset)
        }
        try? image.close()
        #expect(storage.bytes.count <= original.count + (64 << 20), "the file grew to \(storage.bytes.count) bytes")
        let before = try Checker.check(storage: MemoryStorage(original, writable: false))
        let after = try Checker.check(storage: MemoryStorage(storage.bytes, writable: false))
        let overlaps = { (r: CheckReport) in r.findings.filter { $0.code == .overlap }.count }
        #expect(overlaps(after) <= overlaps(before), "writes cross-linked blocks: \(after.findings)")
    }

    @Test("a writable open refused for an unknown required region has written nothing")
    func refusedWritableOpenWritesNothing() throws {
        let cases = CorruptionCorpusTests.cases.filter { $0.name == "unknown required region" || $0.name == "metadata entry 0 unknown required id" }
        #expect(cases.count == 2)
        for c in cases {
            let original = c.mutate(CorruptionCorpusTests.base)
            let storage = MemoryStorage(original, writable: true)
            #expect(throws: VHDXError.self) { try VHDXFile(storage: storage) }
            #expect(storage.bytes == original, "\(c.name): headers were rewritten before the refusal")
        }
    }

    @Test("a writable open that writes nothing leaves the file byte-identical, even with a pending log")
    func writableOpenIsLazy() throws {
        let original = try bytes(try Fixtures.path("iotest-dirtylog-10G-4M.vhdx"))
        let storage = MemoryStorage(original, writable: true, maxSize: 1 << 40)
        do {
            let image = try VHDXFile(storage: storage)
            #expect(try image.read(at: 17 << 20, count: 4096).allSatisfy { $0 == 0xa5 }, "the pending log is applied for reads")
            #expect(throws: VHDXError.self) { try image.write([1, 2, 3], at: image.virtualSize) }
        }
        #expect(storage.bytes == original)
    }

    // MARK: - Requests checked whole

    @Test("out-of-range writes (pattern, input file, pipe, zero, trim) are refused whole, nothing written")
    func outOfRangeWrites() throws {
        let dir = try scratchDir()
        let image = "\(dir)/e.vhdx"
        #expect(try vhdx("create '\(image)' 64M").status == 0)
        try Data(repeating: 0x44, count: 20 << 20).write(to: URL(fileURLWithPath: "\(dir)/input"))
        let before = try bytes(image)
        for args in ["--offset 50M --length 20M --pattern 0xaa", "--offset 50M --input '\(dir)/input'",
                     "--offset 60M --length 8M --zero", "--offset 60M --length 8M --trim", "--offset 65M --length 1 --pattern 1"] {
            let r = try vhdx("write '\(image)' \(args)")
            #expect(r.status == 1 && r.stderr.contains("nothing was written"), "\(args): \(r.status) \(r.stderr)")
            #expect(try bytes(image) == before, "\(args) wrote")
        }
        let piped = try Shell.run("cat '\(dir)/input' | '\(try vhdxBinary())' write '\(image)' --offset 50M --input -", allowFailure: true)
        #expect(piped.status == 1 && piped.stderr.contains("nothing was written"), "\(piped.stderr)")
        #expect(try bytes(image) == before, "piped input wrote")
        // What fits is written, from a file and from a pipe larger than one buffer.
        #expect(try vhdx("write '\(image)' --offset 44M --input '\(dir)/input'").status == 0)
        let ok = try Shell.run("head -c 12M '\(dir)/input' | '\(try vhdxBinary())' write '\(image)' --offset 0 --input -", allowFailure: true)
        #expect(ok.status == 0, "\(ok.stderr)")
        let check = try Shell.run("qemu-io -r -f vhdx -c 'read -P 0x44 44M 20M' -c 'read -P 0x44 0 12M' -c 'read -P 0 12M 32M' '\(image)'", allowFailure: true)
        #expect(check.status == 0 && !check.stdout.contains("failed"), "\(check.stdout)")
    }

    @Test("a write whose parent cannot be resolved leaves the child byte-identical")
    func unresolvedParentWritesNothing() throws {
        let dir = try scratchDir()
        try chain(in: dir)
        try FileManager.default.removeItem(atPath: "\(dir)/base.vhdx")
        let before = try bytes("\(dir)/child.avhdx")
        let r = try vhdx("write '\(dir)/child.avhdx' --offset 0 --length 4K --pattern 1")
        #expect(r.status == 1 && r.stderr.contains("parent not found"), "\(r.stderr)")
        #expect(try bytes("\(dir)/child.avhdx") == before)
    }
}
