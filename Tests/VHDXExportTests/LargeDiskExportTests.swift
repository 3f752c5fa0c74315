import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXExport
import VHDXTestSupport

/// Disks up to 64 TiB, the VHDX limit: the whole backup cycle on sparse images, a few MiB
/// written at far offsets (the last bytes of the disk too). A raw restore is not among them:
/// ext4 cannot hold a raw file over 16 TiB. Verify skips what the image does not hold where
/// the exports say zeros, so it does not read 64 TiB.
@Suite struct LargeDiskExportTests {
    static let tib: UInt64 = 1 << 40

    /// A sparse tracked disk of `size` bytes in a fresh folder.
    final class Disk {
        let dir: String
        let path: String
        var rng = SplitMix(seed: 64)
        /// What was written where, in order (later writes win).
        var writes: [(offset: UInt64, bytes: [UInt8])] = []

        init(size: UInt64, name: String) throws {
            dir = Fixtures.tempPath(name)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            path = dir + "/disk.vhdx"
            try VHDXCreator.create(path: path, options: CreateOptions(virtualSize: size))
            let image = try VHDXFile.open(path: path, writable: true)
            try ChangeTracking.enable(image)
            try image.close()
        }

        deinit { try? FileManager.default.removeItem(atPath: dir) }

        func at(_ name: String) -> String { dir + "/" + name }

        func write(_ count: Int, at offset: UInt64) throws {
            let bytes = rng.bytes(count)
            let image = try VHDXFile.open(path: path, writable: true)
            try ChangeTracker.attach(to: image)
            try image.write(bytes, at: offset)
            try image.close()
            writes.append((offset, bytes))
        }

        /// Whether `image` reads every write's bytes (the last one at each place) and zeros
        /// just around them.
        func holds(_ image: String) throws -> [String] {
            let v = try VHDXFile.open(path: image)
            var problems: [String] = []
            for (k, w) in writes.enumerated() {
                let got = try v.read(at: w.offset, count: w.bytes.count)
                // Bytes a later write replaced are not expected from this one.
                let expected = writes[(k + 1)...].reduce(w.bytes) { bytes, later in
                    var b = bytes
                    for i in 0..<b.count where (later.offset..<later.offset + UInt64(later.bytes.count)).contains(w.offset + UInt64(i)) {
                        b[i] = later.bytes[Int(w.offset + UInt64(i) - later.offset)]
                    }
                    return b
                }
                if got != expected { problems.append("\(image): the write at \(w.offset) reads differently") }
            }
            return problems
        }
    }

    @Test("64 TiB: full stream and .vhdx, incremental stream and .avhdx, restore, apply, verify")
    func cycleAt64TiB() throws {
        let size = 64 * LargeDiskExportTests.tib
        let disk = try Disk(size: size, name: "export-64tib")
        try disk.write(1 << 20, at: 0)
        try disk.write(2 << 20, at: 17 * LargeDiskExportTests.tib + 12345 * 512)
        try disk.write(3 << 20, at: size - (3 << 20))

        let full = try Exporter.export(disk.path, to: disk.at("full.vxs"))
        #expect(full.header.digestBlock == 16 << 20)
        try Exporter.export(disk.path, to: disk.at("full.vhdx"))
        let atFull = disk.writes.count

        try disk.write(1 << 20, at: 40 * LargeDiskExportTests.tib + 4096)
        try disk.write(4096, at: size - 4096)
        let inc = try Exporter.export(disk.path, to: disk.at("inc.vxs"), options: ExportOptions(base: disk.at("full.vxs")))
        #expect(inc.header.digestBlock == full.header.digestBlock)
        #expect(inc.dataBytes <= 2 * (16 << 20), "only the changed blocks: \(inc.dataBytes) bytes")
        try Exporter.export(disk.path, to: disk.at("inc.avhdx"), options: ExportOptions(base: disk.at("full.vhdx")))

        // Restored from the full stream, then the incremental applied.
        let restored = disk.at("restored.vhdx")
        try Restorer.restore(to: restored, from: [disk.at("full.vxs")])
        let partial = Array(disk.writes[..<atFull])
        let all = disk.writes
        disk.writes = partial
        #expect(try disk.holds(restored) == [])
        #expect(try Verifier.verify(restored, against: [disk.at("full.vxs")]).identical)
        #expect(try Verifier.verify(disk.at("full.vhdx"), against: [disk.at("full.vxs")]).identical)
        disk.writes = all
        try Applier.apply(disk.at("inc.vxs"), to: restored)
        #expect(try disk.holds(restored) == [])
        #expect(try Verifier.verify(restored, against: [disk.at("full.vxs"), disk.at("inc.vxs")]).identical)
        // Against the exported chain: its 2 MiB-block child has 33 million BAT entries to walk
        // (about 90 s in a debug build), so only in the long mode (VHDX_LONG_TESTS=1).
        if TestScale.factor > 1 { #expect(try Verifier.verify(restored, against: [disk.at("inc.avhdx")]).identical) }
        // Against the full export alone: the first byte the incremental changed.
        #expect(try Verifier.verify(restored, against: [disk.at("full.vxs")]).firstDifference == 40 * LargeDiskExportTests.tib + 4096)

        // Restored from both streams at once. (Not from the exported chain here: its top has
        // Hyper-V's 2 MiB differencing blocks, 2^25 BAT entries to walk, a minute and a half in
        // a debug build; the comparison with it above walks them once.)
        try Restorer.restore(to: disk.at("streams.vhdx"), from: [disk.at("full.vxs"), disk.at("inc.vxs")])
        #expect(try disk.holds(disk.at("streams.vhdx")) == [])
        #expect(try Verifier.verify(disk.at("streams.vhdx"), against: [disk.at("full.vxs"), disk.at("inc.vxs")]).identical)
        #expect(try disk.holds(disk.at("inc.avhdx")) == [])
    }

    @Test("17 TiB through the CLI (the issue's reproduction): export exits 0 and the stream restores")
    func cliAt17TiB() throws {
        let disk = try Disk(size: 17 * LargeDiskExportTests.tib, name: "export-17tib")
        try disk.write(1 << 20, at: LargeDiskExportTests.tib)
        let v = try vhdxBinary()
        let e = try Shell.run("'\(v)' export '\(disk.path)' '\(disk.at("g.vxs"))'", allowFailure: true)
        #expect(e.status == 0, "\(e.stderr)")
        let r = try Shell.run("'\(v)' restore '\(disk.at("gr.vhdx"))' '\(disk.at("g.vxs"))'", allowFailure: true)
        #expect(r.status == 0, "\(r.stderr)")
        let c = try Shell.run("'\(v)' verify '\(disk.at("gr.vhdx"))' '\(disk.at("g.vxs"))'", allowFailure: true)
        #expect(c.status == 0, "\(c.stdout)\(c.stderr)")
        #expect(try disk.holds(disk.at("gr.vhdx")) == [])
    }
}
