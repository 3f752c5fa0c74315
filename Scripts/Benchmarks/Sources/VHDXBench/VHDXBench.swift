// Benchmark driver for Scripts/bench-write.sh, bench-track.sh and bench-chain.sh. Built by
// the scripts (through Scripts/bench-lib.sh) with
//   swift build -c release --package-path Benchmarks
//
// Every command that writes attaches change tracking when FILE has a tracking region (as the
// `vhdx` CLI does), so a tracked image stays tracked; `tracked=0|1` says which it was.
// random-writes, qemu-io-script, expected and track-query draw from the same generator
// (SplitMix64), so for equal --size/--count/--seed they describe exactly the same writes in
// the same order. Output lines are key=value pairs the scripts parse; keep them stable.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser

@main
struct VHDXBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "VHDXBench",
        abstract: "Write and query workloads for the benchmark scripts (not a product).",
        subcommands: [RandomWrites.self, SeqWrites.self, TrackQuery.self, QemuIOScript.self, Expected.self]
    )
}

/// A non-negative integer option: decimal or 0x hex (what the scripts pass).
struct Count: ExpressibleByArgument {
    let value: UInt64
    init?(argument: String) {
        let parsed = argument.hasPrefix("0x") ? UInt64(argument.dropFirst(2), radix: 16) : UInt64(argument)
        guard let parsed else { return nil }
        value = parsed
    }
    init(_ value: UInt64) { self.value = value }
    var defaultValueDescription: String { String(value) }
}

/// The write plan's options, shared by the commands that draw it.
struct PlanOptions: ParsableArguments {
    @Option(help: "Number of writes.") var count: Count
    @Option(help: "Seed of the generator.") var seed: Count
    @Option(name: .customLong("write-size"), help: "Bytes per write (aligned to it).") var writeSize = Count(defaultWriteSize)
    @Option(help: "1: no offset is drawn twice (redraws; a different sequence).") var distinct = Count(0)

    func plan(size: UInt64) -> WritePlan {
        WritePlan(size: size, count: Int(count.value), seed: seed.value, writeSize: writeSize.value, distinct: distinct.value != 0)
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

/// Says what failed on stderr and exits with `code` (1: an error, 2: a wrong answer).
func fail(_ message: String, code: Int32 = 1) -> ExitCode {
    emit("VHDXBench: \(message)\n", to: 2)
    return ExitCode(code)
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
