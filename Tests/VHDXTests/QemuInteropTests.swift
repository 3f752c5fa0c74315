import Foundation
import Testing
@testable import VHDX
import VHDXTestSupport

/// Images made by qemu-img across block sizes, odd sizes, fixed and dynamic: `vhdx convert`
/// output must be byte-identical to `qemu-img convert -O raw`'s.
@Suite("qemu-img interop", .serialized)
struct QemuInteropTests {
    /// A raw disk with self-identifying data: each 512-byte sector that holds data starts with its
    /// LBA and a tag, and some regions stay zero so sparse handling is exercised.
    static func makeRaw(size: UInt64) throws -> String {
        let path = Fixtures.tempPath("pattern-\(size).raw")
        let fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o644)
        guard fd >= 0 else { throw TestFailure("cannot create \(path)") }
        defer { close(fd) }
        ftruncate(fd, off_t(size))
        var rng = SplitMix(seed: size)
        // Write 64 KiB runs at pseudo-random places (about a third of the disk) plus both ends.
        var offsets: [UInt64] = [0, size - 65536]
        for _ in 0..<max(4, size / (192 << 10)) { offsets.append(rng.next() % (size / 512) * 512) }
        for o in offsets {
            let len = Int(min(65536, size - o))
            var buf = [UInt8](repeating: 0, count: len)
            for s in stride(from: 0, to: len, by: 512) {
                let lba = (o + UInt64(s)) / 512
                for k in 0..<8 { buf[s + k] = UInt8(truncatingIfNeeded: lba >> (8 * UInt64(k))) }
                for k in 8..<min(512, len - s) { buf[s + k] = UInt8(truncatingIfNeeded: rng.next()) | 1 }
            }
            _ = buf.withUnsafeBytes { pwrite(fd, $0.baseAddress, len, off_t(o)) }
        }
        return path
    }

    static let cases: [(String, UInt64, String)] = [
        ("1M", 7 * (1 << 20) + 512 * 3, "dynamic"),
        ("2M", 33 * (1 << 20), "dynamic"),
        ("8M", 20 * (1 << 20) + 4096, "fixed"),
        ("32M", 70 * (1 << 20), "dynamic"),
        ("32M", 40 * (1 << 20), "fixed"),
        ("256M", 300 * (1 << 20) + 512, "dynamic"),
        ("1M", 5 * (1 << 20), "fixed"),
    ]

    @Test("vhdx convert equals qemu-img convert -O raw", arguments: cases)
    func convertMatchesQemu(_ c: (String, UInt64, String)) throws {
        try Shell.require("qemu-img")
        let raw = try QemuInteropTests.makeRaw(size: c.1)
        let image = Fixtures.tempPath("q-\(c.0)-\(c.2).vhdx")
        try Shell.run("qemu-img convert -f raw -O vhdx -o subformat=\(c.2),block_size=\(c.0) '\(raw)' '\(image)'")
        let ours = Fixtures.tempPath("ours.raw"), theirs = Fixtures.tempPath("theirs.raw")
        try Shell.run("'\(try vhdxBinary())' convert '\(image)' '\(ours)'")
        try Shell.run("qemu-img convert -f vhdx -O raw '\(image)' '\(theirs)'")
        try Shell.run("cmp '\(ours)' '\(theirs)' && cmp '\(ours)' '\(raw)'")
        // Sparse: our output holds no more data extents than qemu-img's (measured with
        // SEEK_DATA/SEEK_HOLE; du would also count the filesystem's extent-tree blocks).
        let (oursData, theirsData) = (dataBytes(ours), dataBytes(theirs))
        #expect(oursData <= theirsData, "data bytes ours \(oursData) vs qemu-img \(theirsData)")
        // And our checker agrees with qemu-img check that the image is clean.
        #expect(try Checker.check(path: image).exitCode == 0)
        for p in [raw, image, ours, theirs] { unlink(p) }
    }

    @Test("a 64 TiB sparse image: info is instant and data lands where qemu-io wrote it")
    func sixtyFourTiB() throws {
        try Shell.require("qemu-io")
        let image = Fixtures.tempPath("64t.vhdx")
        try Shell.run("qemu-img create -q -f vhdx '\(image)' 64T")
        let spots: [UInt64] = [0, 1 << 40, (64 << 40) - (1 << 20)]
        for (i, o) in spots.enumerated() {
            try Shell.run("qemu-io -f vhdx -c 'write -q -P \(0x41 + i) \(o) 65536' '\(image)'")
        }
        let f = try VHDXFile.openFile(path: image)
        #expect(f.virtualSize == 64 << 40)
        for (i, o) in spots.enumerated() {
            #expect(try f.read(at: o, count: 65536).allSatisfy { $0 == UInt8(0x41 + i) })
            #expect(try f.read(at: o + 65536, count: 4096).allSatisfy { $0 == 0 })
            // qemu reads the same pattern back.
            try Shell.run("qemu-io -f vhdx -r -c 'read -q -P \(0x41 + i) \(o) 65536' '\(image)'")
        }
        let data = try f.extents().filter { $0.kind == .data }
        #expect(data.count == 3)
        #expect(zip(data, spots).allSatisfy { $0.virtualOffset == $1 / f.blockSize * f.blockSize })
        #expect(try Checker.check(path: image).exitCode == 0)
        unlink(image)
    }
}
