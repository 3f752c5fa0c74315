import ArgumentParser

/// The random-writes plan described without an image: its disk size, count and seed.
struct PlanShape: ParsableArguments {
    @Option(help: "Virtual disk size in bytes.") var size: Count
    @Option(help: "Number of writes.") var count: Count
    @Option(help: "Seed of the generator.") var seed: Count

    func plan() -> WritePlan { WritePlan(size: size.value, count: Int(count.value), seed: seed.value) }
}

struct QemuIOScript: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qemu-io-script",
        abstract: "The random-writes plan as a qemu-io command script on stdout.",
        discussion: "`write -q -P B OFF 4k` lines, `flush` every K writes when K > 0, and a final `flush`."
    )
    @OptionGroup var plan: PlanShape
    @Option(name: .customLong("flush-every"), help: "A flush line after every K writes (0: only at the end).") var flushEvery = Count(0)

    func run() {
        var out = ""
        out.reserveCapacity(1 << 20)
        var done: UInt64 = 0
        for w in plan.plan() {
            out += "write -q -P \(w.byte) \(w.offset) 4k\n"
            done += 1
            if flushEvery.value > 0 && done % flushEvery.value == 0 { out += "flush\n" }
            if out.utf8.count >= 1 << 20 { emit(out, to: 1); out.removeAll(keepingCapacity: true) }
        }
        out += "flush\n"
        emit(out, to: 1)
    }
}

struct Expected: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "expected",
        abstract: "M distinct written offsets with the byte they must read back as (the last write to each wins), one `OFFSET BYTE` line each.",
        discussion: "Spread evenly over the write sequence."
    )
    @OptionGroup var plan: PlanShape
    @Option(help: "Offsets to print.") var sample: Count

    func run() {
        let sample = max(1, Int(self.sample.value))
        let plan = Array(self.plan.plan())
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
    }
}
