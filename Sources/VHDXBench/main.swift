// Write benchmark driver for Scripts/bench-write.sh. Not a product; build it with
//   swift build -c release --product VHDXBench
//
//   VHDXBench random-writes FILE --count N --seed S [--flush-every K]
//       N random 4 KiB-aligned 4 KiB writes over the whole virtual size of FILE (a VHDX opened
//       writable), each filled with one non-zero byte drawn from the same RNG, then flush +
//       close. Prints one key=value line: timings (CLOCK_MONOTONIC) and writes/s.
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
struct WritePlan: Sequence, IteratorProtocol {
    var rng: SplitMix64
    let slots: UInt64
    var remaining: Int
    init(size: UInt64, count: Int, seed: UInt64) {
        rng = SplitMix64(state: seed)
        slots = size / writeSize
        remaining = count
    }
    mutating func next() -> (offset: UInt64, byte: UInt8)? {
        guard remaining > 0 else { return nil }
        remaining -= 1
        let slot = rng.next().multipliedFullWidth(by: slots).high  // unbiased enough, uses high bits
        let byte = UInt8(1 + rng.next() % 255)
        return (slot * writeSize, byte)
    }
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
          VHDXBench random-writes FILE --count N --seed S [--flush-every K]
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
    args.only(["count", "seed", "flush-every"], positional: 1)
    let path = args.positional[0]
    let count = Int(args.required("count"))
    let seed = args.required("seed")
    let flushEvery = Int(args.options["flush-every"] ?? 0)
    do {
        let t0 = now()
        let image = try VHDXFile.open(path: path, writable: true)
        let t1 = now()
        var buffer = [UInt8](repeating: 0, count: Int(writeSize))
        var done = 0
        for w in WritePlan(size: image.virtualSize, count: count, seed: seed) {
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
        print("count=\(count) open_s=\(fmt(t1 - t0)) write_s=\(fmt(t2 - t1)) flush_close_s=\(fmt(t3 - t2)) "
              + "total_s=\(fmt(total)) writes_per_s=\(fmt(Double(count) / total, 1))")
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
