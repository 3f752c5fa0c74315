// Benchmark driver for Scripts/bench-write.sh and Scripts/bench-track.sh. Not a product;
// build it with
//   swift build -c release --product VHDXBench
//
// Every command that writes attaches change tracking when FILE has a tracking region (as the
// `vhdx` CLI does), so a tracked image stays tracked; `tracked=0|1` says which it was.
//
//   VHDXBench random-writes FILE --count N --seed S [--flush-every K] [--write-size W] [--distinct 1]
//       N random W-aligned W-byte writes (default 4 KiB) over the whole virtual size of FILE (a
//       VHDX opened writable), each filled with one non-zero byte drawn from the same RNG, then
//       flush + close. Prints one key=value line: timings (CLOCK_MONOTONIC) and writes/s.
//       --distinct 1: no offset is drawn twice (redraws; a different sequence).
//   VHDXBench seq-writes FILE --bytes B [--chunk C]
//       Writes [0, B) in C-byte pieces (default 1 MiB), in order, each filled with a non-zero
//       byte, then flush + close. Prints timings like random-writes.
//   VHDXBench track-query FILE SINCE_ID [--seal 1] (--count N --seed S [--write-size W] [--distinct 1] | --seq-bytes B)
//       Opens FILE (writable with --seal 1, else read-only) with tracking, optionally seals,
//       then asks changes(since: SINCE_ID) and compares the answer with the granules the
//       given write plan touched (the same plan as random-writes / seq-writes): the answer
//       must cover them all (exit 2 otherwise); exact=1 when it is exactly them (what clean
//       closes give unless a set outgrew its slot and was coarsened). Prints open/seal/changes
//       times in ms and the answer's size against the plan's.
//   VHDXBench qemu-io-script --size BYTES --count N --seed S [--flush-every K]
//       The same writes as a qemu-io command script on stdout (`write -q -P B OFF 4k` lines,
//       `flush` every K writes when K > 0, and a final `flush`).
//   VHDXBench expected --size BYTES --count N --seed S --sample M
//       M distinct written offsets with the byte they must read back as (the last write to
//       each offset wins), one `OFFSET BYTE` line each, spread evenly over the write sequence.
//
// Both random-writes and qemu-io-script draw from the same generator (SplitMix64), so for
// equal --size/--count/--seed they issue exactly the same writes in the same order.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX
import VHDXChangeTracking

let writeSize: UInt64 = 4096

/// SplitMix64: tiny, fast, deterministic across platforms.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The write sequence: offset (4 KiB-aligned, anywhere in the disk) and fill byte (1...255,
/// never zero: an all-zero write into an unallocated block changes nothing and allocates nothing).
/// With `distinct`, a slot already drawn is drawn again (a different sequence, same generator).
struct WritePlan: Sequence, IteratorProtocol {
    var rng: SplitMix64
    let slots: UInt64
    let size: UInt64
    var remaining: Int
    let distinct: Bool
    var seen = Set<UInt64>()
    init(size: UInt64, count: Int, seed: UInt64, writeSize: UInt64 = writeSize, distinct: Bool = false) {
        rng = SplitMix64(state: seed)
        self.size = writeSize
        slots = size / writeSize
        remaining = distinct ? Swift.min(count, Int(slots)) : count
        self.distinct = distinct
    }
    mutating func next() -> (offset: UInt64, byte: UInt8)? {
        guard remaining > 0 else { return nil }
        remaining -= 1
        while true {
            let slot = rng.next().multipliedFullWidth(by: slots).high  // unbiased enough, uses high bits
            let byte = UInt8(1 + rng.next() % 255)
            if distinct && !seen.insert(slot).inserted { continue }
            return (slot * size, byte)
        }
    }
}

/// Opens `path` and attaches change tracking when it has a tracking region.
func openTracked(_ path: String, writable: Bool) throws -> (VHDXFile, ChangeTracker?) {
    let image = try VHDXFile.open(path: path, writable: writable)
    let tracker = try ChangeTracker.attach(to: image)
    return (image, tracker)
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Writes all of `text` to a file descriptor (stdout/stderr without touching C's FILE globals).
func emit(_ text: String, to fd: Int32) {
    let bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
        if n < 0 { if errno == EINTR { continue }; exit(1) }
        done += n
    }
}

func fail(_ message: String, code: Int32 = 1) -> Never {
    emit("VHDXBench: \(message)\n", to: 2)
    exit(code)
}

func usage() -> Never {
    fail("""
        usage:
          VHDXBench random-writes FILE --count N --seed S [--flush-every K] [--write-size W] [--distinct 1]
          VHDXBench seq-writes FILE --bytes B [--chunk C]
          VHDXBench track-query FILE SINCE_ID [--seal 1] (--count N --seed S [--write-size W] [--distinct 1] | --seq-bytes B)
          VHDXBench qemu-io-script --size BYTES --count N --seed S [--flush-every K]
          VHDXBench expected --size BYTES --count N --seed S --sample M
        """, code: 64)
}

/// `--name VALUE` options (non-negative integers, decimal or 0x hex) and positional arguments.
struct Arguments {
    var positional: [String] = []
    var options: [String: UInt64] = [:]
    init(_ args: ArraySlice<String>) {
        var it = args.makeIterator()
        while let a = it.next() {
            if a.hasPrefix("--") {
                guard let v = it.next() else { fail("\(a) needs a value", code: 64) }
                let parsed = v.hasPrefix("0x") ? UInt64(v.dropFirst(2), radix: 16) : UInt64(v)
                guard let n = parsed else { fail("\(a): not a non-negative integer: \(v)", code: 64) }
                options[String(a.dropFirst(2))] = n
            } else {
                positional.append(a)
            }
        }
    }
    func required(_ name: String) -> UInt64 {
        guard let v = options[name] else { fail("missing --\(name)", code: 64) }
        return v
    }
    func only(_ allowed: Set<String>, positional n: Int) {
        for k in options.keys where !allowed.contains(k) { fail("unknown option --\(k)", code: 64) }
        if positional.count != n { usage() }
    }
}

let argv = CommandLine.arguments
guard argv.count >= 2 else { usage() }
let args = Arguments(argv[2...])

switch argv[1] {
case "random-writes":
    args.only(["count", "seed", "flush-every", "write-size", "distinct"], positional: 1)
    let path = args.positional[0]
    let count = Int(args.required("count"))
    let seed = args.required("seed")
    let flushEvery = Int(args.options["flush-every"] ?? 0)
    let size = args.options["write-size"] ?? writeSize
    let distinct = (args.options["distinct"] ?? 0) != 0
    do {
        let t0 = now()
        let (image, tracker) = try openTracked(path, writable: true)
        let t1 = now()
        var buffer = [UInt8](repeating: 0, count: Int(size))
        var done = 0
        for w in WritePlan(size: image.virtualSize, count: count, seed: seed, writeSize: size, distinct: distinct) {
            buffer.withUnsafeMutableBytes { _ = memset($0.baseAddress!, Int32(w.byte), $0.count) }
            try image.write(buffer, at: w.offset)
            done += 1
            if flushEvery > 0 && done % flushEvery == 0 { try image.flush() }
        }
        let t2 = now()
        try image.flush()
        try image.close()
        let t3 = now()
        let total = t3 - t0
        print("count=\(done) tracked=\(tracker == nil ? 0 : 1) open_s=\(fmt(t1 - t0)) write_s=\(fmt(t2 - t1)) flush_close_s=\(fmt(t3 - t2)) "
              + "total_s=\(fmt(total)) writes_per_s=\(fmt(Double(done) / total, 1))")
    } catch {
        fail("\(path): \(error)")
    }

case "seq-writes":
    args.only(["bytes", "chunk"], positional: 1)
    let path = args.positional[0]
    let bytes = args.required("bytes")
    let chunk = args.options["chunk"] ?? (1 << 20)
    guard chunk > 0 else { fail("--chunk must be positive", code: 64) }
    do {
        let t0 = now()
        let (image, tracker) = try openTracked(path, writable: true)
        guard bytes <= image.virtualSize else { fail("--bytes \(bytes) is past the \(image.virtualSize)-byte disk", code: 64) }
        let t1 = now()
        var buffer = [UInt8](repeating: 0, count: Int(chunk))
        var offset: UInt64 = 0
        var done = 0
        while offset < bytes {
            let n = Int(min(chunk, bytes - offset))
            let byte = Int32(1 + done % 255)
            buffer.withUnsafeMutableBytes { _ = memset($0.baseAddress!, byte, n) }
            try buffer.withUnsafeBytes { b in try image.write(UnsafeRawBufferPointer(rebasing: b[0..<n]), at: offset) }
            offset += UInt64(n)
            done += 1
        }
        let t2 = now()
        try image.flush()
        try image.close()
        let t3 = now()
        let total = t3 - t0
        print("count=\(done) tracked=\(tracker == nil ? 0 : 1) open_s=\(fmt(t1 - t0)) write_s=\(fmt(t2 - t1)) flush_close_s=\(fmt(t3 - t2)) "
              + "total_s=\(fmt(total)) mib_per_s=\(fmt(Double(bytes) / 1048576 / total, 1))")
    } catch {
        fail("\(path): \(error)")
    }

case "track-query":
    args.only(["seal", "count", "seed", "write-size", "distinct", "seq-bytes"], positional: 2)
    let path = args.positional[0]
    guard let since = ChangeID(text: args.positional[1]) else { fail("not a change ID: \(args.positional[1])", code: 64) }
    let seal = (args.options["seal"] ?? 0) != 0
    do {
        let t0 = now()
        let (image, tracker) = try openTracked(path, writable: seal)
        guard let tracker else { fail("\(path): change tracking is not enabled") }
        let t1 = now()
        var sealed = ""
        if seal { sealed = try tracker.seal().description }
        let t2 = now()
        let answer = try tracker.changes(since: since)
        let t3 = now()
        try image.close()
        let t4 = now()
        // The granules the plan wrote, as sorted merged runs [start, end).
        let g = tracker.status.granule
        var runs: [(UInt64, UInt64)] = []
        if let seq = args.options["seq-bytes"] {
            if seq > 0 { runs = [(0, (seq + g - 1) / g)] }
        } else {
            let size = args.options["write-size"] ?? writeSize
            var granules = Set<UInt64>()
            for w in WritePlan(size: image.virtualSize, count: Int(args.required("count")), seed: args.required("seed"),
                               writeSize: size, distinct: (args.options["distinct"] ?? 0) != 0) {
                for k in w.offset / g..<(w.offset + size + g - 1) / g { granules.insert(k) }
            }
            for k in granules.sorted() {
                if let last = runs.last, last.1 == k { runs[runs.count - 1].1 = k + 1 } else { runs.append((k, k + 1)) }
            }
        }
        let expected = runs.map { ChangedRange(offset: $0.0 * g, length: min(($0.1 - $0.0) * g, image.virtualSize - $0.0 * g)) }
        // Never smaller than the truth: every written range must be covered. Equal after clean
        // closes, unless the set outgrew its slot and was coarsened (exact=0 then).
        var j = 0
        for e in expected {
            var at = e.offset
            while at < e.end {
                while j < answer.ranges.count && answer.ranges[j].end <= at { j += 1 }
                guard j < answer.ranges.count, answer.ranges[j].offset <= at else {
                    fail("\(path): changes(since:) misses written bytes at \(at) (within the written range \(e.offset)+\(e.length)): "
                         + "\(answer.ranges.count) ranges (\(answer.changedBytes) bytes), expected \(expected.count) (\(expected.reduce(0) { $0 + $1.length }) bytes)", code: 2)
                }
                at = Swift.min(e.end, answer.ranges[j].end)
            }
        }
        let exact = answer.ranges == expected
        let expectedBytes = expected.reduce(0) { $0 + $1.length }
        print("ok=1 exact=\(exact ? 1 : 0) open_ms=\(fmt((t1 - t0) * 1000, 3)) seal_ms=\(fmt((t2 - t1) * 1000, 3)) changes_ms=\(fmt((t3 - t2) * 1000, 3)) "
              + "close_ms=\(fmt((t4 - t3) * 1000, 3)) ranges=\(answer.ranges.count) changed_bytes=\(answer.changedBytes) "
              + "expected_ranges=\(expected.count) expected_bytes=\(expectedBytes)"
              + (seal ? " sealed=\(sealed)" : ""))
    } catch {
        fail("\(path): \(error)")
    }

case "qemu-io-script":
    args.only(["size", "count", "seed", "flush-every"], positional: 0)
    let flushEvery = Int(args.options["flush-every"] ?? 0)
    var out = ""
    out.reserveCapacity(1 << 20)
    var done = 0
    for w in WritePlan(size: args.required("size"), count: Int(args.required("count")), seed: args.required("seed")) {
        out += "write -q -P \(w.byte) \(w.offset) 4k\n"
        done += 1
        if flushEvery > 0 && done % flushEvery == 0 { out += "flush\n" }
        if out.utf8.count >= 1 << 20 { emit(out, to: 1); out.removeAll(keepingCapacity: true) }
    }
    out += "flush\n"
    emit(out, to: 1)

case "expected":
    args.only(["size", "count", "seed", "sample"], positional: 0)
    let count = Int(args.required("count"))
    let sample = max(1, Int(args.required("sample")))
    let plan = Array(WritePlan(size: args.required("size"), count: count, seed: args.required("seed")))
    var last: [UInt64: UInt8] = [:]
    for w in plan { last[w.offset] = w.byte }
    var seen = Set<UInt64>()
    let step = max(1, plan.count / sample)
    var i = 0
    while i < plan.count && seen.count < sample {
        let off = plan[i].offset
        if seen.insert(off).inserted { print("\(off) \(last[off]!)") }
        i += step
    }

default:
    usage()
}

/// `x` (non-negative) with `digits` decimals, without Foundation or varargs.
func fmt(_ x: Double, _ digits: Int = 6) -> String {
    var scale: UInt64 = 1
    for _ in 0..<digits { scale *= 10 }
    let n = UInt64((x * Double(scale)).rounded())
    let whole = String(n / scale)
    guard digits > 0 else { return whole }
    let frac = String(n % scale)
    return whole + "." + String(repeating: "0", count: digits - frac.count) + frac
}
