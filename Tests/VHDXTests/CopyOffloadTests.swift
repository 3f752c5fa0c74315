import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

/// `CopyOffload`: copy_file_range with the read/write loop as the fallback. Every case must
/// leave the destination byte-identical to the source range, whichever path moved the bytes.
@Suite("Copy offload")
struct CopyOffloadTests {
    static let MiB = 1 << 20

    /// A source file of `size` pseudo-random bytes (with a 1 MiB hole at 2 MiB when `hole`) and
    /// an empty destination of the same size.
    static func files(size: Int = 5 << 20, hole: Bool = false) throws -> (src: FileStorage, dst: FileStorage, bytes: [UInt8], dir: String) {
        let dir = Fixtures.tempPath("offload")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var bytes = Self.random(size, seed: 42)
        if hole { bytes.replaceSubrange(2 * MiB..<3 * MiB, with: repeatElement(0, count: MiB)) }
        let src = try FileStorage(path: dir + "/src", mode: .create, lock: false)
        try src.resize(to: UInt64(size))
        try src.write(Array(bytes[0..<2 * MiB]), at: 0)
        if !hole { try src.write(Array(bytes[2 * MiB..<3 * MiB]), at: UInt64(2 * MiB)) }
        try src.write(Array(bytes[(3 * MiB)...]), at: UInt64(3 * MiB))
        let dst = try FileStorage(path: dir + "/dst", mode: .create, lock: false)
        try dst.resize(to: UInt64(size))
        return (src, dst, bytes, dir)
    }

    /// `n` pseudo-random bytes, a word at a time (byte-wise generation is slow in debug builds).
    static func random(_ n: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix(seed: seed)
        var out = [UInt8](repeating: 0, count: n)
        out.withUnsafeMutableBytes { b in
            for i in 0..<n / 8 { b.storeBytes(of: rng.next() | 0x0101_0101_0101_0101, toByteOffset: i * 8, as: UInt64.self) }
        }
        return out
    }

    /// Equality without printing megabytes when it fails.
    static func same(_ a: [UInt8], _ b: [UInt8]) -> Bool { a == b }

    /// The fallback the converters use: read from the source, write to the destination.
    static func loop(_ src: FileStorage, _ dst: FileStorage) -> (UInt64, UInt64, UInt64) throws(VHDXError) -> Void {
        { (from, to, count) throws(VHDXError) in try dst.write(try src.read(count: Int(count), at: from), at: to) }
    }

    /// Copies [1 MiB + 512, +3 MiB) of the source to offset 1 MiB + 512 of the destination.
    static func run(_ offload: inout CopyOffload, hole: Bool = false) throws -> (got: [UInt8], want: [UInt8], dst: FileStorage, dir: String) {
        let f = try files(hole: hole)
        let at = UInt64(MiB + 512), n = UInt64(3 * MiB)
        try offload.copy(from: f.src, at: at, to: f.dst, at: at, length: n, fallback: loop(f.src, f.dst))
        var want = [UInt8](repeating: 0, count: f.bytes.count)
        want.replaceSubrange(Int(at)..<Int(at + n), with: f.bytes[Int(at)..<Int(at + n)])
        return (try f.dst.read(count: f.bytes.count, at: 0), want, f.dst, f.dir)
    }

    @Test func theKernelCopyIsByteIdentical() throws {
        var offload = CopyOffload(enabled: true)
        let r = try Self.run(&offload)
        defer { try? FileManager.default.removeItem(atPath: r.dir) }
        #expect(Self.same(r.got, r.want))
        #expect(offload.offloadedBytes + offload.fallbackBytes == UInt64(3 * Self.MiB))
        // This machine's /var/tmp (ext4) supports copy_file_range; elsewhere it may not.
        if offload.stoppedBecause == nil { #expect(offload.offloadedBytes == UInt64(3 * Self.MiB)) }
    }

    /// "Not supported here" on the first call: everything goes through the loop and offloading
    /// stops for the rest of the run, saying why.
    @Test(arguments: [EXDEV, EINVAL, ENOSYS, EOPNOTSUPP])
    func anUnsupportedAnswerFallsBackAndStops(_ errno: Int32) throws {
        var calls = 0
        var offload = CopyOffload(enabled: true) { _, _, _, _, _ in calls += 1; return -Int(errno) }
        let r = try Self.run(&offload)
        defer { try? FileManager.default.removeItem(atPath: r.dir) }
        #expect(Self.same(r.got, r.want))
        #expect(calls == 1)
        #expect(!offload.enabled)
        #expect(offload.stoppedBecause?.contains(String(cString: strerror(errno))) == true)
        #expect(offload.fallbackBytes == UInt64(3 * Self.MiB) && offload.offloadedBytes == 0)
    }

    /// Short copies continue where they stopped; an error part-way (EIO) hands the rest to the
    /// loop without turning offloading off; a copy of 0 bytes too.
    @Test func shortCopiesAndFailuresPartWayStayExact() throws {
        let real = try #require(CopyOffload.systemCopy)
        var short = CopyOffload(enabled: true) { i, io, o, oo, n in real(i, io, o, oo, min(n, 4096 + 512)) }
        let a = try Self.run(&short)
        #expect(Self.same(a.got, a.want))
        #expect(short.enabled)
        var calls = 0
        var failing = CopyOffload(enabled: true) { i, io, o, oo, n in
            calls += 1
            return calls == 1 ? real(i, io, o, oo, min(n, 12345)) : -Int(EIO)
        }
        let b = try Self.run(&failing)
        #expect(Self.same(b.got, b.want))
        #expect(failing.enabled && failing.stoppedBecause == nil)
        #expect(failing.offloadedBytes + failing.fallbackBytes == UInt64(3 * Self.MiB))
        var zero = CopyOffload(enabled: true) { _, _, _, _, _ in 0 }
        let c = try Self.run(&zero)
        #expect(Self.same(c.got, c.want))
        for dir in [a.dir, b.dir, c.dir] { try? FileManager.default.removeItem(atPath: dir) }
    }

    /// A hole in the source stays a hole in the destination (not copied as zeros).
    @Test func sourceHolesStayHoles() throws {
        var offload = CopyOffload(enabled: true)
        let r = try Self.run(&offload, hole: true)
        defer { try? FileManager.default.removeItem(atPath: r.dir) }
        #expect(Self.same(r.got, r.want))
        guard offload.stoppedBecause == nil else { return }
        #expect(offload.offloadedBytes == UInt64(2 * Self.MiB), "the 1 MiB hole was copied")
        #expect(try r.dst.allocatedBytes() <= UInt64(2 * Self.MiB) + 64 << 10)
    }

    @Test func offCopiesEverythingThroughTheLoop() throws {
        var offload = CopyOffload(enabled: false)
        let r = try Self.run(&offload)
        defer { try? FileManager.default.removeItem(atPath: r.dir) }
        #expect(Self.same(r.got, r.want))
        #expect(offload.offloadedBytes == 0 && offload.fallbackBytes == UInt64(3 * Self.MiB))
    }

    /// `convert` to raw of a chain (a dynamic base with whole blocks, a child with partial
    /// blocks): the same bytes with the kernel copy, with it off, and with a kernel that
    /// refuses at once, and the same as the chain's byte model.
    @Test func convertToRawIsTheSameWithAndWithoutOffload() throws {
        let dir = Fixtures.tempPath("offload-convert")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var o = CreateOptions(virtualSize: 12 << 20)
        o.blockSize = UInt32(2 * Self.MiB)
        try VHDXCreator.create(path: dir + "/base.vhdx", options: o)
        var seed: UInt64 = 5
        func random(_ n: Int) -> [UInt8] { seed += 1; return Self.random(n, seed: seed) }
        // The chain's content as a byte model: the expected side, not a read through the engine.
        var expected = [UInt8](repeating: 0, count: 12 << 20)
        func put(_ bytes: [UInt8], _ at: Int) -> [UInt8] { expected.replaceSubrange(at..<at + bytes.count, with: bytes); return bytes }
        do {
            let base = try VHDXFile.openFile(path: dir + "/base.vhdx", writable: true)
            try base.write(put(random(4 * Self.MiB), 0), at: 0)
            try base.write(put(random(Self.MiB), 7 * Self.MiB), at: UInt64(7 * Self.MiB))
            try base.close()
        }
        var c = ChildOptions()
        c.blockSize = UInt32(Self.MiB)
        try VHDXCreator.createChild(path: dir + "/child.avhdx", parentPath: dir + "/base.vhdx", options: c)
        do {
            let child = try VHDXFile.openChain(path: dir + "/child.avhdx", writable: true)
            for k in 0..<12 { try child.write(put(random(512 * (k + 1)), k * 900_000 / 512 * 512), at: UInt64(k) * 900_000 / 512 * 512) }
            try child.close()
        }
        let image = try VHDXFile.openChain(path: dir + "/child.avhdx")
        #expect(Self.same(try image.read(at: 0, count: 12 << 20), expected), "the engine reads the chain differently from the model")
        var on = RawConverter(source: image)
        on.copyOffload = CopyOffload(enabled: true)
        let onReport = try on.write(toPath: dir + "/on.raw")
        var off = RawConverter(source: image)
        off.copyOffload = CopyOffload(enabled: false)
        try off.write(toPath: dir + "/off.raw")
        var refused = RawConverter(source: image)
        refused.copyOffload = CopyOffload(enabled: true) { _, _, _, _, _ in -Int(EXDEV) }
        let refusedReport = try refused.write(toPath: dir + "/refused.raw")
        for name in ["on", "off", "refused"] {
            let got = [UInt8](try #require(FileManager.default.contents(atPath: "\(dir)/\(name).raw")))
            #expect(Self.same(got, expected), "\(name).raw differs from the chain's content")
        }
        if onReport.stoppedBecause == nil { #expect(onReport.offloadedBytes > 5 * UInt64(Self.MiB)) }
        #expect(refusedReport.offloadedBytes == 0 && refusedReport.stoppedBecause != nil)
    }
}
