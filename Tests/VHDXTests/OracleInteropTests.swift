import Foundation
import Testing
@testable import VHDX
import VHDXTestSupport

/// libvhdi (pyvhdi) and 7-Zip, which no one here wrote, read the same bytes we do; on the
/// dirty-log image they return the stale, un-replayed content and we do not.
@Suite("libvhdi and 7-Zip agree", .serialized)
struct OracleInteropTests {
    static func libvhdi(_ path: String) throws -> String {
        String(try libvhdiSHA256([path]).stdout.prefix(64))
    }

    static func sevenZip(_ path: String) throws -> String {
        String(try Shell.run("set -o pipefail; 7zz x -tvhdx -so '\(path)' 2>/dev/null | python3 -c 'import hashlib,sys\nh=hashlib.sha256()\nwhile True:\n b=sys.stdin.buffer.read(8<<20)\n if not b: break\n h.update(b)\nprint(h.hexdigest())'").stdout.prefix(64))
    }

    @Test("fixtures read identically through libvhdi, 7-Zip and vhdx",
          arguments: ["iotest-dynamic-1G.vhdx", "test-disk2vhd.vhdx", "fixed.vhdx", "dynamic.vhdx"])
    func fixtures(_ name: String) throws {
        try Shell.require("7zz")
        let path = try Fixtures.path(name)
        let ours = try contentSHA256(try VHDXFile.openFile(path: path))
        #expect(try OracleInteropTests.libvhdi(path) == ours)
        #expect(try OracleInteropTests.sevenZip(path) == ours)
    }

    @Test("on a pending log, libvhdi and 7-Zip return stale data; vhdx returns the replayed content")
    func dirtyLog() throws {
        let path = try Fixtures.path("iotest-dirtylog-10G-4M.vhdx")
        let stale = "cc3d67a6bfea2ec826b5d0f77ac755bdbca18479ed13f64ee8b3d3f0d64859ca"
        #expect(try OracleInteropTests.libvhdi(path) == stale)
        // After our in-place replay, the oracles see the right content too.
        let copy = try Fixtures.scratchCopy(path)
        _ = try Repairer.repair(path: copy)
        let replayed = "179cefe8b0587f123393eedf2aa7aa8d25798591178e6bc3950a09762f38f96f"
        #expect(try OracleInteropTests.libvhdi(copy) == replayed)
        #expect(try OracleInteropTests.sevenZip(copy) == replayed)
        unlink(copy)
    }

    @Test("qemu-made images with 4 KiB-unaligned sizes read the same through libvhdi")
    func qemuImages() throws {
        let raw = try QemuInteropTests.makeRaw(size: 9 * (1 << 20) + 512)
        let image = Fixtures.tempPath("l.vhdx")
        try Shell.run("qemu-img convert -f raw -O vhdx -o block_size=2M '\(raw)' '\(image)'")
        let ours = try contentSHA256(try VHDXFile.openFile(path: image))
        #expect(try OracleInteropTests.libvhdi(image) == ours)
        #expect(try Shell.run("python3 -c 'import hashlib,sys;print(hashlib.sha256(open(sys.argv[1],\"rb\").read()).hexdigest())' '\(raw)'").stdout.prefix(64) == ours)
        unlink(raw); unlink(image)
    }
}
