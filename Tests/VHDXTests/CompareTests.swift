import Foundation
import Testing
@testable import VHDX
import VHDXTestSupport

/// `vhdx compare` and the engine's `ImageComparer`: VHDX and raw inputs, qemu-img compare's
/// default (unallocated == zeros, zero tails ignored) and strict semantics, exact first offsets,
/// exit codes 0/1/2, and sparse 64 TiB images compared without reading their holes.
@Suite("vhdx compare", .serialized)
struct CompareTests {
    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text)")
    }

    func uint(_ j: [String: Any], _ key: String) -> UInt64? { (j[key] as? NSNumber)?.uint64Value }

    /// Overwrites one byte of `path` in place (a hole becomes allocated).
    func patch(_ path: String, at offset: UInt64, byte: UInt8) throws {
        try Shell.run("printf '\\x\(String(byte, radix: 16))' | dd of='\(path)' bs=1 seek=\(offset) conv=notrunc status=none")
    }

    /// The raw conversion of a fixture, made by the qemu-img oracle (not by `vhdx convert`, whose
    /// reads are the code under test). `dense` writes every byte (no holes).
    func rawOf(_ vhdxPath: String, dense: Bool = false) throws -> String {
        let out = Fixtures.tempPath(URL(fileURLWithPath: vhdxPath).lastPathComponent + ".raw")
        try QemuRaw.convert(vhdxPath, to: out, dense: dense)
        return out
    }

    func fileSize(_ path: String) throws -> UInt64 {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0
    }

    /// The result JSON of a run that must end with `status`.
    func compareJSON(_ args: String, status: Int32, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let r = try vhdx("compare --json \(args)")
        #expect(r.status == status, "exit \(r.status), stderr: \(r.stderr)", sourceLocation: sourceLocation)
        return try json(r.stdout)
    }

    // MARK: identical

    @Test("a fixture equals its own raw conversion", arguments: ["dynamic.vhdx", "fixed.vhdx", "iotest-dynamic-1G.vhdx", "test-disk2vhd.vhdx", "iotest-dirtylog-10G-4M.vhdx"])
    func fixtureEqualsItsConversion(_ name: String) throws {
        let image = try Fixtures.path(name)
        let raw = try rawOf(image)
        defer { unlink(raw) }
        let size = try fileSize(raw)  // qemu's virtual size, not the engine's
        let text = try vhdx("compare '\(image)' '\(raw)'")
        #expect(text.status == 0, "\(text.stdout) \(text.stderr)")
        #expect(text.stdout == "Images are identical.\n")
        #expect(text.stderr.isEmpty)
        for (x, y) in [(image, raw), (raw, image), (image, image)] {
            let j = try compareJSON("'\(x)' '\(y)'", status: 0)
            #expect(j["result"] as? String == "identical")
            #expect(j["first-difference"] is NSNull)
            #expect(uint(j, "size-a") == size)
            #expect(uint(j, "size-b") == size)
            #expect(uint(j, "compared-bytes") == size)
        }
        // The VHDX side is sniffed by its signature, not its name.
        let j = try compareJSON("'\(image)' '\(raw)'", status: 0)
        #expect(j["result"] as? String == "identical")
        #expect(try DiskImage(path: image).format == .vhdx)
        #expect(try DiskImage(path: raw).format == .raw)
    }

    // MARK: first difference

    @Test("a one-byte change is reported at its exact offset, wherever it lands", arguments: [
        (UInt64(33 << 20) + 12345, UInt8(0x00)),  // inside a data block with data: memcmp path
        (UInt64(66 << 20) + 3, UInt8(0x01)),      // a data block that holds zeros vs a hole in the raw
        (UInt64(500 << 20) + 7, UInt8(0x01)),     // a ZERO block vs a byte the raw now holds
        (UInt64(1 << 30) - 1, UInt8(0x01)),       // the very last byte
        (UInt64(0), UInt8(0x00)),                 // the very first
    ])
    func oneByteChange(_ c: (UInt64, UInt8)) throws {
        let image = try Fixtures.path("iotest-dynamic-1G.vhdx")
        let raw = try rawOf(image)
        defer { unlink(raw) }
        try patch(raw, at: c.0, byte: c.1)
        for args in ["'\(image)' '\(raw)'", "'\(raw)' '\(image)'"] {
            let text = try vhdx("compare \(args)")
            #expect(text.status == 1)
            #expect(text.stdout.contains("offset \(c.0) (0x\(String(c.0, radix: 16)))"), "\(text.stdout)")
            let j = try compareJSON(args, status: 1)
            #expect(j["result"] as? String == "different")
            #expect(uint(j, "first-difference") == c.0)
            #expect(uint(j, "compared-bytes") == c.0)
            #expect(uint(j, "size-a") == 1 << 30 && uint(j, "size-b") == 1 << 30)
        }
        // Chunking must not matter: an odd chunk size that straddles every boundary.
        let r = try ImageComparer(try DiskImage(path: image), try DiskImage(path: raw), chunkSize: 65536 + 13).compare()
        #expect(r.firstDifference == c.0)
        #expect(r.reason == .content)
    }

    @Test("two different fixtures: the first difference agrees with cmp on their raw conversions")
    func differentFixturesAgreeWithCmp() throws {
        let x = try Fixtures.path("dynamic.vhdx"), y = try Fixtures.path("fixed.vhdx")
        let rx = try rawOf(x), ry = try rawOf(y)
        defer { unlink(rx); unlink(ry) }
        // cmp prints "differ: byte N" (1-based); it is the oracle here.
        let out = try Shell.run("cmp '\(rx)' '\(ry)'", allowFailure: true).stdout
        let match = try #require(out.firstRange(of: /byte (\d+)/), "cmp found no difference: \(out)")
        let expected = try #require(UInt64(out[match].split(separator: " ")[1])) - 1
        let j = try compareJSON("'\(x)' '\(y)'", status: 1)
        #expect(uint(j, "first-difference") == expected)
        let mixed = try compareJSON("'\(x)' '\(ry)'", status: 1)
        #expect(uint(mixed, "first-difference") == expected)
    }

    // MARK: sizes

    @Test("an extra tail of zeros: identical by default, different with --strict")
    func zeroTail() throws {
        // A fixed image (every block allocated) and a dense raw copy (every byte written): their
        // allocation matches, so --strict passes until the sizes differ.
        let image = try Fixtures.path("fixed.vhdx")
        let raw = try rawOf(image, dense: true)
        defer { unlink(raw) }
        let size = try fileSize(raw)
        #expect(try vhdx("compare --strict '\(image)' '\(raw)'").status == 0)
        try Shell.run("truncate -s +1M '\(raw)'")
        for (args, a, b) in [("'\(image)' '\(raw)'", size, size + (1 << 20)), ("'\(raw)' '\(image)'", size + (1 << 20), size)] {
            let r = try vhdx("compare \(args)")
            #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
            #expect(r.stdout == "Images are identical.\n")
            #expect(r.stderr.contains("differ in size"))
            let j = try compareJSON(args, status: 0)
            #expect(uint(j, "size-a") == a && uint(j, "size-b") == b)
            #expect(uint(j, "compared-bytes") == size + (1 << 20))
            let strict = try vhdx("compare --strict \(args)")
            #expect(strict.status == 1)
            #expect(strict.stdout.contains("size mismatch at offset \(size)"), "\(strict.stdout)")
            let sj = try compareJSON("--strict \(args)", status: 1)
            #expect(uint(sj, "first-difference") == size)
        }
    }

    @Test("an extra tail holding a non-zero byte is a difference at that byte")
    func nonZeroTail() throws {
        let image = try Fixtures.path("dynamic.vhdx")
        let raw = try rawOf(image)
        defer { unlink(raw) }
        let size = try fileSize(raw)
        try Shell.run("truncate -s +1M '\(raw)'")
        try patch(raw, at: size + 4096 + 5, byte: 0x7f)
        for args in ["'\(image)' '\(raw)'", "'\(raw)' '\(image)'"] {
            let r = try vhdx("compare \(args)")
            #expect(r.status == 1)
            #expect(r.stdout.contains("content mismatch at offset \(size + 4101)"), "\(r.stdout)")
            #expect(uint(try compareJSON(args, status: 1), "first-difference") == size + 4101)
        }
        // A tail of one byte, right at the end of the shorter disk.
        let short = try rawOf(image)
        defer { unlink(short) }
        try Shell.run("printf 'x' >> '\(short)'")
        #expect(uint(try compareJSON("'\(image)' '\(short)'", status: 1), "first-difference") == size)
    }

    // MARK: strict allocation

    @Test("a block qemu allocated with zeros: identical by default, an allocation mismatch with --strict")
    func strictAllocationMismatch() throws {
        try Shell.require("qemu-io")
        let a = Fixtures.tempPath("alloc-a.vhdx"), b = Fixtures.tempPath("alloc-b.vhdx"), c = Fixtures.tempPath("alloc-c.vhdx")
        defer { unlink(a); unlink(b); unlink(c) }
        try Shell.run("qemu-img create -q -f vhdx -o block_size=1M '\(a)' 8M && cp '\(a)' '\(b)' && cp '\(a)' '\(c)'")
        try Shell.run("qemu-io -f vhdx -c 'write -q -P 0 2M 1M' '\(b)'")
        // qemu really allocated block 2 (a plain write of zeros, not write -z).
        let mapA = try #require(try JSONSerialization.jsonObject(with: Data(try vhdx("map --json '\(a)'").stdout.utf8)) as? [[String: Any]])
        let mapB = try #require(try JSONSerialization.jsonObject(with: Data(try vhdx("map --json '\(b)'").stdout.utf8)) as? [[String: Any]])
        #expect(mapA.allSatisfy { $0["state"] as? String != "data" })
        #expect(mapB.contains { $0["state"] as? String == "data" && uint($0, "offset") == 2 << 20 && uint($0, "length") == 1 << 20 })
        #expect(try DiskImage(path: b).allocationRun(at: (2 << 20) + 5) == .init(range: (2 << 20)..<(3 << 20), allocated: true))

        let loose = try compareJSON("'\(a)' '\(b)'", status: 0)
        #expect(loose["result"] as? String == "identical")
        for args in ["'\(a)' '\(b)'", "'\(b)' '\(a)'"] {
            let r = try vhdx("compare --strict \(args)")
            #expect(r.status == 1)
            #expect(r.stdout.contains("allocation mismatch at offset 2097152 (0x200000)"), "\(r.stdout)")
            #expect(uint(try compareJSON("-s \(args)", status: 1), "first-difference") == 2 << 20)
        }
        // Same allocation passes strict: an untouched copy, and a raw file that is all hole.
        #expect(try vhdx("compare --strict '\(a)' '\(c)'").status == 0)
        let hole = Fixtures.tempPath("hole.raw")
        defer { unlink(hole) }
        try Shell.run("truncate -s 8M '\(hole)'")
        #expect(try vhdx("compare --strict '\(a)' '\(hole)'").status == 0)
        #expect(try vhdx("compare --strict '\(b)' '\(hole)'").status == 1)
    }

    @Test("raw holes found with SEEK_DATA/SEEK_HOLE are unallocated")
    func rawHoles() throws {
        let sparse = Fixtures.tempPath("sparse.raw"), written = Fixtures.tempPath("written.raw")
        defer { unlink(sparse); unlink(written) }
        try Shell.run("truncate -s 4M '\(sparse)' '\(written)'")
        try Shell.run("dd if=/dev/zero of='\(written)' bs=1M seek=1 count=1 conv=notrunc status=none")
        let w = try DiskImage(path: written)
        var runs: [DiskImage.AllocationRun] = []
        try w.forEachAllocationRun { runs.append($0) }
        let mib: UInt64 = 1 << 20
        let expected: [DiskImage.AllocationRun] = [
            DiskImage.AllocationRun(range: 0..<mib, allocated: false),
            DiskImage.AllocationRun(range: mib..<2 * mib, allocated: true),
            DiskImage.AllocationRun(range: 2 * mib..<4 * mib, allocated: false),
        ]
        #expect(runs == expected)
        #expect(try vhdx("compare '\(sparse)' '\(written)'").status == 0)
        let r = try vhdx("compare --strict '\(sparse)' '\(written)'")
        #expect(r.status == 1)
        #expect(r.stdout.contains("allocation mismatch at offset 1048576 (0x100000)"), "\(r.stdout)")
        // Only the allocated MiB is read, once, against the known-zero hole.
        let result = try ImageComparer(try DiskImage(path: sparse), w).compare()
        #expect(result.identical)
        #expect(result.bytesRead == 1 << 20)
    }

    // MARK: errors and usage

    @Test func missingOrUnreadableInputIsExit2() throws {
        let image = try Fixtures.path("dynamic.vhdx")
        for args in ["/nonexistent/x.vhdx '\(image)'", "'\(image)' /nonexistent/x.vhdx", "--json --strict '\(image)' /nonexistent/x.vhdx"] {
            let r = try vhdx("compare \(args)")
            #expect(r.status == 2)
            #expect(r.stderr.contains("/nonexistent/x.vhdx"))
            #expect(r.stdout.isEmpty)
        }
        // A damaged VHDX is an error, never silently compared as raw bytes.
        let junk = Fixtures.tempPath("junk.vhdx")
        defer { unlink(junk) }
        try Shell.run("{ printf 'vhdxfile'; head -c 2097152 /dev/zero; } > '\(junk)'")
        let bad = try vhdx("compare '\(junk)' '\(image)'")
        #expect(bad.status == 2, "\(bad.stdout) \(bad.stderr)")
        #expect(bad.stderr.contains(junk))
        #expect(try vhdx("compare '\(image)' /tmp").status == 2)
        // A differencing disk's bytes live partly in its parent, which is not beside this copy.
        let child = try Fixtures.path("differencing.avhdx")
        let chain = try vhdx("compare '\(child)' '\(child)'")
        #expect(chain.status == 2)
        #expect(chain.stderr.contains("parent"))
    }

    @Test func badUsageIsNotSuccess() throws {
        let image = try Fixtures.path("dynamic.vhdx")
        #expect(try vhdx("compare '\(image)'").status == 64)
        #expect(try vhdx("compare --bogus '\(image)' '\(image)'").status == 64)
    }

    @Test func progressGoesToStderr() throws {
        let image = try Fixtures.path("iotest-dynamic-1G.vhdx")
        let r = try vhdx("compare --progress '\(image)' '\(image)'")
        #expect(r.status == 0)
        #expect(r.stdout == "Images are identical.\n")
        #expect(r.stderr.contains("compare: 100%"))
    }

    // MARK: scale

    @Test("two sparse 64 TiB images with the same data at 1 TiB compare identical without reading their holes")
    func sixtyFourTiB() throws {
        try Shell.require("qemu-io")
        let x = Fixtures.tempPath("64t-x.vhdx"), y = Fixtures.tempPath("64t-y.vhdx"), z = Fixtures.tempPath("64t-z.vhdx")
        defer { unlink(x); unlink(y); unlink(z) }
        for (path, pattern) in [(x, 0x5a), (y, 0x5a), (z, 0x5b)] {
            try Shell.run("qemu-img create -q -f vhdx '\(path)' 64T && qemu-io -f vhdx -c 'write -q -P \(pattern) 1T 64K' '\(path)'")
        }
        let clock = ContinuousClock()
        var result: CompareResult?
        let elapsed = try clock.measure {
            let r = try vhdx("compare --json '\(x)' '\(y)'")
            #expect(r.status == 0, "\(r.stderr)")
            let j = try json(r.stdout)
            #expect(j["result"] as? String == "identical")
            #expect(uint(j, "compared-bytes") == 64 << 40)
            result = try ImageComparer(try DiskImage(path: x), try DiskImage(path: y), strict: true).compare()
        }
        #expect(elapsed < .seconds(20), "took \(elapsed)")
        let r = try #require(result)
        #expect(r.identical)
        // Only the one allocated block on each side was read.
        let block = try VHDXFile.openFile(path: x).blockSize
        #expect(r.bytesRead == 2 * block)
        let differ = try compareJSON("'\(x)' '\(z)'", status: 1)
        #expect(uint(differ, "first-difference") == 1 << 40)
    }

    // MARK: helpers

    @Test func mismatchHelpersFindTheExactByte() {
        for n in [1, 7, 4096, 4097, 100_000] {
            let zeros = [UInt8](repeating: 0, count: n)
            for at in Set([0, n / 2, n - 1]) {
                var other = zeros
                other[at] = 9
                zeros.withUnsafeBytes { z in other.withUnsafeBytes { o in
                    #expect(firstMismatch(z, o) == at)
                    #expect(firstNonZero(o) == at)
                    #expect(firstMismatch(z, z) == nil)
                    #expect(firstNonZero(z) == nil)
                } }
            }
        }
    }
}
