// Helpers every libFuzzer harness of Scripts/fuzz.sh shares: triage output, the sparse input
// form of an image file (see FuzzOpen.swift), byte comparison, and the CRC-32C fix-up of a
// VHDX image's own structures. Compiled into each harness's module.

@testable import VHDXFormat

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The largest file a sparse input may describe.
let maxSparseBytes: UInt64 = 16 << 20
let sparseMagic = Array("VHDXSPAR".utf8)

let verbose = getenv("VHDX_FUZZ_VERBOSE") != nil

func say(_ s: @autoclosure () -> String) {
    guard verbose else { return }
    let line = "[fuzz] \(s())\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}


/// The file an input describes: the bytes themselves, or the sparse form laid out (see the top).
func sparseDecoded(_ input: UnsafeBufferPointer<UInt8>) -> [UInt8] {
    guard input.count >= 12, input[0..<8].elementsEqual(sparseMagic) else { return Array(input) }
    func u32(_ i: Int) -> UInt64 {
        UInt64(input[i]) | UInt64(input[i + 1]) << 8 | UInt64(input[i + 2]) << 16 | UInt64(input[i + 3]) << 24
    }
    let size = Int(min(u32(8) * 512, maxSparseBytes))
    var out = [UInt8](repeating: 0, count: size)
    var i = 12
    out.withUnsafeMutableBytes { dst in
        while i + 6 <= input.count {
            let offset = u32(i)
            let length = Int(input[i + 4]) | Int(input[i + 5]) << 8
            i += 6
            let n = min(length, input.count - i)
            if offset < UInt64(size) {
                let m = min(n, size - Int(offset))
                memcpy(dst.baseAddress! + Int(offset), input.baseAddress! + i, m)
            }
            i += n
        }
    }
    return out
}

/// Whether two byte arrays are equal, with one memcmp (an element loop would run libFuzzer's
/// comparison hook on every byte of an 8 MiB input).
func same(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    return a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } }
}

/// Recomputes the CRC-32C fields an image's structures carry, so mutations get past them.
enum FuzzChecksums {
    /// The input with its checksums recomputed, or nil when every one was already right.
    static func fixed(_ input: [UInt8]) -> [UInt8]? {
        var b = input
        var changed = false
        // Headers (4 KiB at 64 KiB and 128 KiB), checksum at +4.
        for off in Layout.headerOffsets.map(Int.init) {
            changed = fix(&b, at: off, length: Header.encodedSize, signature: Signature.header) || changed
        }
        // Region tables (64 KiB at 192 KiB and 256 KiB), checksum at +4.
        for off in Layout.regionTableOffsets.map(Int.init) {
            changed = fix(&b, at: off, length: RegionTable.encodedSize, signature: Signature.regionTable) || changed
        }
        // Log entries of each header's log, last position first so an entry that covers a later
        // one is summed after it.
        var logs: [(UInt64, UInt64)] = []
        for off in Layout.headerOffsets.map(Int.init) {
            guard off + 80 <= b.count else { continue }
            let length = UInt64(load32(b, off + 68))
            let offset = load64(b, off + 72)
            if length > 0, !logs.contains(where: { $0 == (offset, length) }) { logs.append((offset, length)) }
        }
        for (logOffset, logLength) in logs {
            guard logOffset < UInt64(b.count), logLength % 4096 == 0 else { continue }
            let length = Int(min(logLength, UInt64(b.count) - logOffset)) / 4096 * 4096
            let base = Int(logOffset)
            for pos in stride(from: length - 4096, through: 0, by: -4096) {
                let at = base + pos
                guard Array(b[at..<at + 4]) == Signature.logEntry else { continue }
                let entryLength = Int(load32(b, at + 8))
                guard entryLength > 0, entryLength % 4096 == 0, entryLength <= length else { continue }
                // The entry as read circularly from the ring.
                var entry: [UInt8] = []
                entry.reserveCapacity(entryLength)
                var p = pos
                while entry.count < entryLength {
                    let take = min(entryLength - entry.count, length - p)
                    entry += b[base + p..<base + p + take]
                    p = (p + take) % length
                }
                let crc = CRC32C.checksum(entry, zeroingFieldAt: 4)
                if load32(b, at + 4) != crc { store32(&b, at + 4, crc); changed = true }
            }
        }
        return changed ? b : nil
    }

    private static func fix(_ b: inout [UInt8], at off: Int, length: Int, signature: [UInt8]) -> Bool {
        guard off + length <= b.count, Array(b[off..<off + signature.count]) == signature else { return false }
        let crc = CRC32C.checksum(Array(b[off..<off + length]), zeroingFieldAt: 4)
        guard load32(b, off + 4) != crc else { return false }
        store32(&b, off + 4, crc)
        return true
    }

    private static func load32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }

    private static func load64(_ b: [UInt8], _ i: Int) -> UInt64 {
        UInt64(load32(b, i)) | UInt64(load32(b, i + 4)) << 32
    }

    private static func store32(_ b: inout [UInt8], _ i: Int, _ v: UInt32) {
        for k in 0..<4 { b[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
    }
}

/// Stores `crc` little-endian at `at`.
func storeCRC(_ b: inout [UInt8], _ at: Int, _ crc: UInt32) {
    for k in 0..<4 { b[at + k] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k))) }
}

/// A file that holds `bytes`, for parsers that take a path: made in /dev/shm (memory, not the
/// disk) and unlinked at once, named through /proc/self/fd. Gone when the value is released.
final class MemFile {
    let fd: Int32
    var path: String { "/proc/self/fd/\(fd)" }

    init(_ bytes: [UInt8]) {
        var template = Array("/dev/shm/vhdx-fuzz-XXXXXX".utf8CString)
        fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        precondition(fd >= 0, "mkstemp failed: errno \(errno)")
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        var done = 0
        bytes.withUnsafeBytes { b in
            while done < b.count {
                let n = write(fd, b.baseAddress! + done, b.count - done)
                precondition(n > 0, "memfd write failed: errno \(errno)")
                done += n
            }
        }
    }

    deinit { close(fd) }
}

/// An input's bytes as an array, for parsers that take one.
func inputBytes(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8] {
    Array(UnsafeBufferPointer(start: data, count: size))
}
