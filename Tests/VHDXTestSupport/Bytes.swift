import Foundation

/// Byte-model helpers the crash and interop tests share: comparing images sector by sector,
/// a seeded generator, and counting a sparse file's data.

/// Whether the 512 bytes at `at` are the same in `a` and `b` (both must hold them).
public func sameSector(_ a: [UInt8], _ b: [UInt8], _ at: Int) -> Bool {
    a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress! + at, y.baseAddress! + at, 512) == 0 } }
}

/// Equality through memcmp: `==` on multi-MiB arrays is slow in debug builds.
public func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    guard !a.isEmpty else { return true }
    return a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, a.count) == 0 } }
}

/// `[UInt8] == [UInt8]` in every file that imports VHDXTestSupport, by memcmp. The test targets
/// build unoptimized, where the standard library's generic `Array ==` compares element by element
/// through value witnesses: whole-disk comparisons were 80% of CrashConsistencyTests' CPU time
/// (perf). A concrete overload ranks above the generic one, so plain `==`, `!=` and `#expect(a ==
/// b)` use it; the result is the same.
public func == (a: [UInt8], b: [UInt8]) -> Bool { sameBytes(a, b) }
public func != (a: [UInt8], b: [UInt8]) -> Bool { !sameBytes(a, b) }

extension Array where Element == UInt8 {
    /// `replaceSubrange(range, with: bytes)` for a replacement of the range's own length, by
    /// memcpy: the generic one walks element by element in the unoptimized test build (most of
    /// WriteTests' model upkeep).
    public mutating func overwrite(_ range: Range<Int>, with bytes: [UInt8]) {
        overwrite(range, with: bytes[...])
    }

    public mutating func overwrite(_ range: Range<Int>, with bytes: ArraySlice<UInt8>) {
        precondition(bytes.count == range.count && range.upperBound <= count, "overwrite keeps the length")
        guard !range.isEmpty else { return }
        withUnsafeMutableBytes { to in bytes.withUnsafeBytes { from in
            (to.baseAddress! + range.lowerBound).copyMemory(from: from.baseAddress!, byteCount: range.count)
        } }
    }

    /// The range set to zeros, by memset.
    public mutating func zero(_ range: Range<Int>) {
        precondition(range.upperBound <= count, "zero stays inside the array")
        guard !range.isEmpty else { return }
        withUnsafeMutableBytes { to in _ = memset(to.baseAddress! + range.lowerBound, 0, range.count) }
    }
}

/// Deterministic generator so a failing case names a reproducible input.
public struct SplitMix: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Bytes in a file's data segments, walking SEEK_DATA/SEEK_HOLE.
public func dataBytes(_ path: String) -> UInt64 {
    let fd = open(path, O_RDONLY)
    defer { close(fd) }
    var total: UInt64 = 0
    var off: off_t = 0
    while true {
        let d = lseek(fd, off, 3 /* SEEK_DATA */)
        if d < 0 { break }
        let h = lseek(fd, d, 4 /* SEEK_HOLE */)
        total += UInt64(h - d)
        off = h
    }
    return total
}

extension SplitMix {
    /// `count` random bytes, eight per step (byte-at-a-time generation is slow in debug builds).
    public mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: (count + 7) / 8 * 8)
        out.withUnsafeMutableBytes { b in
            for i in 0..<b.count / 8 { b.storeBytes(of: next(), toByteOffset: i * 8, as: UInt64.self) }
        }
        return Array(out.prefix(count))
    }
}

/// The SHA-256 (hex) of a byte model, as the oracles print it.
public func sha256Hex(_ bytes: [UInt8]) -> String {
    let tmp = Fixtures.tempPath("model.bin")
    _ = FileManager.default.createFile(atPath: tmp, contents: Data(bytes))
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    return (try? Shell.sha256(file: tmp)) ?? ""
}
