import Foundation
import Testing
import VHDXTestSupport

/// `vhdx serve` as a user runs it, on real sources (the Windows fixture chain, a VHD Set, a
/// tracked disk, an exported chain), pulled with real clients (nbdcopy, nbdinfo, python3-libnbd,
/// qemu-io): what a pull-backup tool and an instant restore do.
@Suite("vhdx serve end to end")
struct ServeEndToEndClientTests {
    /// The demo's pull-backup client (python3-libnbd): copies the ranges a context marks dirty
    /// into a file at their offsets; prints "<bytes> bytes in <n> extents".
    static let pullClient = Fixtures.packageRoot.appendingPathComponent("Scripts/oracles/nbd-pull-dirty.py").path

    /// Scattered writes, a trim and a zeroed range, then a flush: the guest's day.
    static let guestScript = """
        import nbd, sys
        h = nbd.NBD()
        h.connect_uri(sys.argv[1])
        for i in range(24):
            h.pwrite(bytes([0x40 + i]) * 65536, (i * 7919 % 900) * 65536)
        h.trim(1 << 20, 4 << 20)
        h.zero(2 << 20, 40 << 20)
        h.flush()
        h.shutdown()
        """

    @Test("the Windows .avhdx chain pulls with nbdcopy to its known SHA-256 (fixtures README: qemu-img, libvhdi and 7-Zip agree); a VHD Set to what vhdx convert reads")
    func realSourcesPullLikeConvert() throws {
        try Shell.require("nbdcopy")
        // The Windows differencing fixture with the stand-in parent under its locator's name.
        let dir = try E2E.dir("e2e-win")
        let child = dir + "/child.avhdx"
        try FileManager.default.copyItem(atPath: try Fixtures.path("differencing.avhdx"), toPath: child)
        try FileManager.default.copyItem(atPath: try Fixtures.path("differencing-standin-parent.vhdx"),
                                         toPath: dir + "/Generation 1_49C4BAF3-4B25-4406-8C4B-D39E65C32385.avhdx")
        let before = try Shell.sha256(file: child)
        let served = try ServeProcess(child, ["--read-only"])
        // The 8 GiB disk's SHA-256 over the stand-in parent, from the fixtures README.
        #expect(try E2E.pullSHA(served.uri) == "fc5c91bfd8f7ee388cf482dc7eb6cef64b39a7e1bd043516ee95887b839f2b78")
        let list = try Shell.run("nbdinfo --list '\(served.uri)'").stdout
        #expect(list.contains("base:allocation"), "\(list)")
        #expect(served.stop() == 0, "\(served.stderr)")
        #expect(try Shell.sha256(file: child) == before, "a read-only serve changed the file")

        // A VHD Set with a checkpoint: the active leaf's chain.
        let set = dir + "/vm.vhds"
        try E2E.ok("set create '\(set)' 32M")
        try E2E.ok("write '\(set)' --offset 0 --pattern 0x11 --length 4M")
        try E2E.ok("set checkpoint '\(set)'")
        try E2E.ok("write '\(set)' --offset 2M --pattern 0x22 --length 3M")
        let s = try ServeProcess(set, ["--read-only"])
        #expect(try E2E.pullSHA(s.uri) == E2E.modelSHA(size: 32 << 20, [(0, 4 << 20, 0x11), (2 << 20, 3 << 20, 0x22)]))
        #expect(s.stop() == 0, "\(s.stderr)")
    }

    @Test("pull backup: full pull, guest writes over NBD, only the dirty ranges pulled give the source; a foreign writer withdraws the ID")
    func pullBackupCycle() throws {
        try Shell.require("nbdinfo")
        try Shell.require("qemu-io")
        let dir = try E2E.dir("e2e-pull")
        let (disk, id) = try E2E.trackedDisk(in: dir, size: "128M", data: "--pattern 0x11 --length 16M")

        // Night 1: the full pull, at the sealed ID (nothing written since).
        var server = try ServeProcess(disk)
        let backup = dir + "/backup.raw"
        try Shell.run("nbdcopy '\(server.uri)' '\(backup)'")
        // The day: the guest writes, trims and zeroes through the server; qemu-io writes and
        // discards too.
        try E2E.python(Self.guestScript, [server.uri])
        try Shell.run("qemu-io -f raw -c 'write -P 0x66 50M 192k' -c 'discard 52M 1M' '\(server.uri)'")
        // qemu-img maps the served disk through base:allocation: data where the guest wrote,
        // holes that read zeros where nothing was ever written (the disk's upper half).
        let qmap = try Shell.run("qemu-img map --output=json -f raw '\(server.uri)'").stdout
        let extents = try #require(try JSONSerialization.jsonObject(with: Data(qmap.utf8)) as? [[String: Any]], "\(qmap.prefix(200))")
        #expect(extents.contains { ($0["data"] as? Bool) == true && ($0["start"] as? Int ?? -1) <= 50 << 20 && 50 << 20 < ($0["start"] as? Int ?? 0) + ($0["length"] as? Int ?? 0) },
                "qemu-img map shows the written range as data: \(qmap.prefix(400))")
        #expect(extents.contains { ($0["zero"] as? Bool) == true && ($0["start"] as? Int ?? -1) <= 100 << 20 && 100 << 20 < ($0["start"] as? Int ?? 0) + ($0["length"] as? Int ?? 0) },
                "qemu-img map shows the unwritten range as zero: \(qmap.prefix(400))")
        // Night 2: the changed ranges since the ID, pulled onto the previous backup.
        let context = "qemu:dirty-bitmap:\(id)"
        let list = try Shell.run("nbdinfo --list '\(server.uri)'").stdout
        #expect(list.contains(context), "the ID is offered: \(list)")
        let pulled = try Shell.run("/usr/bin/python3 '\(Self.pullClient)' '\(server.uri)' '\(context)' '\(backup)'").stdout
        let bytes = try #require(Int(pulled.split(separator: " ").first ?? ""), "\(pulled)")
        #expect(bytes > 0 && bytes < 128 << 20, "only what changed is pulled: \(pulled)")
        let map = try Shell.run("nbdinfo --json --map='\(context)' '\(server.uri)'").stdout
        #expect(map.contains("\"type\": 1") || map.contains("\"type\":1"), "the JSON map marks dirty extents: \(map.prefix(300))")
        #expect(server.stop() == 0, "\(server.stderr)")
        // The patched backup equals the disk as the engine reads it, and the disk checks clean
        // with both our checker and qemu's.
        // qemu-img reads the disk itself (an oracle, not our reader).
        #expect(try Shell.run("qemu-img compare -q -f raw -F vhdx '\(backup)' '\(disk)'", allowFailure: true).status == 0,
                "full + dirty ranges == the source, as qemu-img reads it")
        #expect(try E2E.vhdx("check '\(disk)'").status == 0)
        #expect(try Shell.run("qemu-img check -f vhdx '\(disk)'", allowFailure: true).status == 0)

        // A writer that does not track (qemu-io): the ID can no longer be answered, so it is not
        // offered (never a map that is too small), and the server's log says why.
        try Shell.run("qemu-io -f vhdx -c 'write -P 0x77 8M 64k' '\(disk)'")
        server = try ServeProcess(disk)
        let after = try Shell.run("nbdinfo --list '\(server.uri)'").stdout
        #expect(!after.contains(context), "a reset ID is still offered: \(after)")
        let refused = try Shell.run("nbdinfo --map='\(context)' '\(server.uri)'", allowFailure: true)
        #expect(refused.status != 0, "a map of a withdrawn ID: \(refused.stdout.prefix(200))")
        #expect(server.stop() == 0)
        #expect(server.stderr.contains("not offered") && server.stderr.contains(id), "the log says why: \(server.stderr)")
    }

    @Test("SIGKILL during writes: the image reopens clean and tracking covers every byte that changed")
    func killDuringWrites() throws {
        let dir = try E2E.dir("e2e-kill")
        let (disk, id) = try E2E.trackedDisk(in: dir, size: "64M", granule: "64K", data: "--pattern 0x11 --length 8M")
        try E2E.ok("convert '\(disk)' '\(dir)/before.raw'")
        let server = try ServeProcess(disk)
        // A writer that never stops (until the server dies under it).
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        writer.arguments = ["-c", """
            import nbd, sys, random
            h = nbd.NBD(); h.connect_uri(sys.argv[1]); r = random.Random(7); i = 0
            while True:
                h.pwrite(bytes([i % 251 + 1]) * 65536, r.randrange(0, 1024) * 65536); i += 1
                if i % 16 == 0: h.flush()
                if i == 64: open(sys.argv[2], "w").close()
            """, server.uri, dir + "/started"]
        writer.standardError = FileHandle.nullDevice
        try writer.run()
        for _ in 0..<600 where !FileManager.default.fileExists(atPath: dir + "/started") { usleep(20_000) }
        #expect(FileManager.default.fileExists(atPath: dir + "/started"), "the writer got going")
        server.kill9()
        writer.waitUntilExit()

        #expect(try E2E.vhdx("check '\(disk)'").status == 0, "the image checks clean after the kill")
        try E2E.ok("convert '\(disk)' '\(dir)/after.raw'")
        let changes = try E2E.ok("track changes '\(disk)' --since \(id)")
        let ranges = changes.split(separator: "\n").map { $0.split(separator: " ").compactMap { Int($0) } }
        let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/before.raw"))
        let after = try Data(contentsOf: URL(fileURLWithPath: dir + "/after.raw"))
        var differing = 0, uncovered: [Int] = []
        for chunk in stride(from: 0, to: before.count, by: 65536) where before[chunk..<chunk + 65536] != after[chunk..<chunk + 65536] {
            differing += 1
            if !ranges.contains(where: { $0[0] <= chunk && chunk + 65536 <= $0[0] + $0[1] }) { uncovered.append(chunk) }
        }
        #expect(differing > 0, "the kill came after some writes reached the disk")
        #expect(uncovered.isEmpty, "changed but not reported: \(uncovered.prefix(5))")
    }

    @Test("--overlay: an exported chain served read-write, writes land in the new child, the backup files stay byte-identical")
    func overlayLeavesTheBackupUntouched() throws {
        try Shell.require("qemu-io")
        let dir = try E2E.dir("e2e-overlay")
        let (disk, _) = try E2E.trackedDisk(in: dir, size: "32M", data: "--pattern 0x31 --length 8M")
        try E2E.ok("export '\(disk)' '\(dir)/full.vhdx'")
        try E2E.ok("write '\(disk)' --offset 4M --pattern 0x32 --length 8M")
        try E2E.ok("export '\(disk)' '\(dir)/inc1.avhdx' --base '\(dir)/full.vhdx'")
        let files = ["full.vhdx", "inc1.avhdx"].map { dir + "/" + $0 }
        let hashes = try files.map(Shell.sha256(file:))
        let backupSHA = E2E.modelSHA(size: 32 << 20, [(0, 8 << 20, 0x31), (4 << 20, 8 << 20, 0x32)])
        #expect(try E2E.convertSHA(dir + "/inc1.avhdx") == backupSHA, "the exported chain is the disk")

        let server = try ServeProcess(dir + "/inc1.avhdx", ["--overlay", dir + "/scratch.avhdx"])
        #expect(try E2E.pullSHA(server.uri) == backupSHA, "the overlay starts as the backup")
        try Shell.run("qemu-io -f raw -c 'write -P 0x5a 1M 256k' -c 'discard 6M 1M' '\(server.uri)'")
        let served = try E2E.pullSHA(server.uri)
        #expect(served != backupSHA, "the writes are served")
        #expect(server.stop() == 0, "\(server.stderr)")
        #expect(try files.map(Shell.sha256(file:)) == hashes, "a backup file changed")
        #expect(try E2E.convertSHA(dir + "/scratch.avhdx") == served, "the overlay holds what was served")
        #expect(try E2E.vhdx("check '\(dir)/scratch.avhdx'").status == 0)
    }

    @Test("--checkpoint on a set: the served bytes are the checkpoint's while the guest writes; the stop leaves a reference point")
    func checkpointServesAFrozenSet() throws {
        let dir = try E2E.dir("e2e-ckpt")
        let set = dir + "/vm.vhds"
        try E2E.ok("set create '\(set)' 32M")
        try E2E.ok("write '\(set)' --offset 0 --pattern 0x41 --length 6M")
        let atCheckpoint = E2E.modelSHA(size: 32 << 20, [(0, 6 << 20, 0x41)])
        let server = try ServeProcess(set, ["--checkpoint"])
        // The guest goes on writing to the set's new leaf meanwhile.
        try E2E.ok("write '\(set)' --offset 1M --pattern 0x42 --length 2M")
        #expect(try E2E.pullSHA(server.uri) == atCheckpoint, "the served content moved with the guest")
        let written = try Shell.run("/usr/bin/python3 -c 'import nbd,sys; h=nbd.NBD(); h.connect_uri(sys.argv[1]); h.pwrite(b\"x\"*512, 0)' '\(server.uri)'", allowFailure: true)
        #expect(written.status != 0, "a write to the frozen checkpoint was accepted")
        #expect(server.stop() == 0, "\(server.stderr)")
        let list = try E2E.ok("set list '\(set)'")
        #expect(list.contains("reference"), "the stop keeps a reference point: \(list)")
        #expect(!list.contains("checkpoint "), "the checkpoint is deleted at the stop: \(list)")
        #expect(try E2E.vhdx("check '\(set)'").status == 0)
    }
}
