// libFuzzer entry point for the read-only open path: VHDXFile(storage:) on untrusted bytes, then
// the BAT walks (allocationSummary, forEachExtent), a few bounded virtual-disk reads, and
// Checker.check on a fresh copy. Built by Scripts/fuzz.sh as its own module over the engine
// (Sources/VHDX) and VHDXFormat, each compiled as a module (@testable), with FuzzSupport.swift.
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

@testable import VHDX
@testable import VHDXFormat

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


/// Steps named in VHDX_FUZZ_SKIP.
private let skip: Set<String> = {
    guard let v = getenv("VHDX_FUZZ_SKIP") else { return [] }
    return Set(String(cString: v).split(separator: ",").map { String($0) })
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = sparseDecoded(UnsafeBufferPointer(start: data, count: size))
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