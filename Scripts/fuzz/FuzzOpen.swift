// libFuzzer entry point for the read-only open path: VHDXFile(storage:) on untrusted bytes, then
// the BAT walks (allocationSummary, forEachExtent), a few bounded virtual-disk reads, and
// Checker.check on a fresh copy. Built by Scripts/fuzz.sh into the same module as the engine
// sources (Sources/VHDX), against VHDXFormat compiled as its own module.
//
// Every input is run twice when it differs after a checksum fix-up: once as given, and once with
// the CRC-32C of both headers, both region tables and every log entry in the current log
// recomputed. Without the fix-up almost every mutation of those structures dies at the checksum,
// so the fuzzer would never reach the code behind them. The fix-up is deterministic, so a saved
// reproducer replays the same way; set VHDX_FUZZ_DUMP_FIXED=path to write the fixed-up bytes of
// the last input run (to inspect or feed to `vhdx check`).
//
// Inputs come in two forms. Raw: the bytes are the file. Sparse: "VHDXSPAR", a u32 file size in
// 512-byte units (capped at 16 MiB), then chunks of (u32 file offset, u16 length, bytes) laid
// over zeros. A VHDX file is at least ~4 MiB of mostly zeros (1 MiB-aligned regions), so in raw
// form almost every mutation lands in padding and every run costs megabytes; the sparse form of
// the same image is a few KiB of structure bytes. Scripts/fuzz.sh seeds both forms.
//
// VHDX_FUZZ_SKIP=summary,extents,reads,check,fixup leaves steps out, so a run can get past a
// known bug to the code behind it. VHDX_FUZZ_VERBOSE=1 prints what each step saw (for triage).

import VHDXFormat

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The storage cap: far above any input (-max_len is 8 MiB), low enough that nothing the image
/// claims can make the fuzzer's memory grow through the storage.
private let maxStorageBytes: UInt64 = 64 << 20

/// The most extents the harness looks at; forEachExtent is stopped by throwing from the body.
private let maxExtents = 4096

/// The largest single read, so memory stays small whatever size the image claims.
private let maxReadBytes: UInt64 = 64 << 10

/// The largest file a sparse input may describe.
private let maxSparseBytes: UInt64 = 16 << 20
private let sparseMagic = Array("VHDXSPAR".utf8)

private let verbose = getenv("VHDX_FUZZ_VERBOSE") != nil

private func say(_ s: @autoclosure () -> String) {
    guard verbose else { return }
    let line = "[fuzz] \(s())\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

/// Steps named in VHDX_FUZZ_SKIP.
private let skip: Set<String> = {
    guard let v = getenv("VHDX_FUZZ_SKIP") else { return [] }
    return Set(String(cString: v).split(separator: ",").map { String($0) })
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = decode(UnsafeBufferPointer(start: data, count: size))
    say("input as given (\(bytes.count) bytes\(size >= 8 && data[0] == sparseMagic[0] ? ", sparse form \(size) bytes" : ""))")
    // The input's last 8 bytes (not the file's: a sparse input's file usually ends in zeros) pick
    // the offset of one read.
    var readSeed: UInt64 = 0
    for k in 0..<min(8, size) { readSeed |= UInt64(data[size - 1 - k]) << (8 * UInt64(k)) }
    exercise(bytes, readSeed: readSeed)
    let fixed = skip.contains("fixup") ? nil : FuzzChecksums.fixed(bytes)
    if let fixed {
        say("input with checksums fixed up")
        exercise(fixed, readSeed: readSeed)
    } else {
        say("checksums already right: no fixed-up run")
    }
    if let path = getenv("VHDX_FUZZ_DUMP_FIXED"), let f = fopen(path, "wb") {
        _ = (fixed ?? bytes).withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        fclose(f)
    }
    return 0
}

/// The file an input describes: the bytes themselves, or the sparse form laid out (see the top).
private func decode(_ input: UnsafeBufferPointer<UInt8>) -> [UInt8] {
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
private func same(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    return a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } }
}

/// One run of the read-only engine over `bytes`. Errors are expected; only traps, sanitizer
/// reports, hangs and memory blow-ups are findings.
private func exercise(_ bytes: [UInt8], readSeed: UInt64) {
    let storage = MemoryStorage(bytes, writable: false, maxSize: maxStorageBytes)
    do {
        let image = try VHDXFile(storage: storage)
        say("open: ok, \(image.diskType) \(image.virtualSize) bytes, block \(image.blockSize), BAT entries \(image.layout.batEntriesUsed), log replay \(image.logReplay.map { "\($0.entryCount) entries" } ?? "none")")
        use(image, readSeed: readSeed)
    } catch {
        say("open: \(error.detailedDescription)")
    }
    // The storage is read-only: the open must not have changed it (a write would have thrown).
    if !same(storage.bytes, bytes) {
        fatalError("read-only MemoryStorage changed during open")
    }

    if skip.contains("check") { return }
    let checkStorage = MemoryStorage(bytes, writable: false, maxSize: maxStorageBytes)
    do {
        say("check: starting")
        let report = try Checker.check(storage: checkStorage)
        for f in report.findings { _ = f.description }
        say("check: exit \(report.exitCode), \(report.findings.count) findings, complete \(report.complete)")
        _ = report.exitCode
        _ = report.leakedBytes
    } catch {
        say("check: \(error.detailedDescription)")
    }
    if !same(checkStorage.bytes, bytes) {
        fatalError("read-only MemoryStorage changed during check")
    }
}

private func use(_ image: VHDXFile, readSeed: UInt64) {
    for f in image.findings { say("  finding: \(f)") }
    _ = image.diskType
    _ = image.layout.parentLocator?.parentLinkage
    _ = image.layout.fileIdentifier.creator

    if !skip.contains("summary") {
        do {
            say("allocationSummary: starting")
            let s = try image.allocationSummary()
            say("allocationSummary: \(s.blockCounts), \(s.allocatedBytes) bytes allocated")
        } catch { say("allocationSummary: \(error)") }
    }

    // Extents: stop after maxExtents by throwing; read the start of the first few data extents.
    var dataExtents: [Extent] = []
    var seen = 0
    if !skip.contains("extents") {
        do {
            say("forEachExtent: starting")
            try image.forEachExtent { (e: Extent) throws(VHDXError) -> Void in
                seen += 1
                if e.kind == .data && dataExtents.count < 4 { dataExtents.append(e) }
                if seen >= maxExtents { throw VHDXError(.invalidArgument, "fuzz: extent cap reached") }
            }
            say("forEachExtent: \(seen) extents")
        } catch { say("forEachExtent: \(error)") }
    }
    if skip.contains("reads") { return }

    let size = image.virtualSize
    var ranges: [(UInt64, UInt64)] = []
    // The first 64 KiB.
    ranges.append((0, min(maxReadBytes, size)))
    // The last 4 KiB.
    let tail = min(4096, size)
    ranges.append((size - tail, tail))
    // A 4 KiB range that straddles the first block boundary.
    let block = image.blockSize
    if block > 2048, size > block {
        let start = block - 2048
        ranges.append((start, min(4096, size - start)))
    }
    // 4 KiB at an offset taken from the input.
    if size > 0 {
        let off = (readSeed % size) & ~511
        ranges.append((off, min(4096, size - off)))
    }
    for e in dataExtents {
        ranges.append((e.virtualOffset, min(4096, e.length)))
    }
    // An out-of-range read must throw, not trap.
    ranges.append((size, 1))
    ranges.append((UInt64.max - 1, 1))

    for (offset, count) in ranges {
        let n = Int(min(count, maxReadBytes))
        var buffer = [UInt8](repeating: 0, count: n)
        do {
            try buffer.withUnsafeMutableBytes { b in try image.read(into: b, at: offset) }
            say("read [\(offset), +\(n)): ok")
        } catch {
            say("read [\(offset), +\(n)): \(error)")
        }
    }

    _ = try? image.sectorBitmapEntry(chunk: 0)
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
