#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import VHDX

struct RandomWrites: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "random-writes",
        abstract: "Random aligned writes over the whole disk, then flush + close; one key=value line of timings.",
        discussion: "Each write is filled with one non-zero byte drawn from the same generator. Timings are CLOCK_MONOTONIC."
    )
    @Argument(help: "A VHDX image, opened writable.") var file: String
    @OptionGroup var plan: PlanOptions
    @Option(name: .customLong("flush-every"), help: "Flush after every K writes (0: only at the end).") var flushEvery = Count(0)

    func run() throws {
        do {
            let t0 = now()
            let (image, tracker) = try openTracked(file, writable: true)
            let t1 = now()
            var buffer = [UInt8](repeating: 0, count: Int(plan.writeSize.value))
            var done: UInt64 = 0
            for w in plan.plan(size: image.virtualSize) {
                buffer.withUnsafeMutableBytes { _ = memset($0.baseAddress!, Int32(w.byte), $0.count) }
                try image.write(buffer, at: w.offset)
                done += 1
                if flushEvery.value > 0 && done % flushEvery.value == 0 { try image.flush() }
            }
            try finish(image, tracked: tracker != nil, count: Int(done), times: (t0, t1)) { total in "writes_per_s=\(fmt(Double(done) / total, 1))" }
        } catch {
            throw fail("\(file): \(error)")
        }
    }
}

struct SeqWrites: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seq-writes",
        abstract: "Writes [0, BYTES) in order, each piece filled with a non-zero byte, then flush + close; timings like random-writes."
    )
    @Argument(help: "A VHDX image, opened writable.") var file: String
    @Option(help: "Bytes to write from offset 0.") var bytes: Count
    @Option(help: "Bytes per write.") var chunk = Count(1 << 20)

    func validate() throws {
        guard chunk.value > 0 else { throw ValidationError("--chunk must be positive") }
    }

    func run() throws {
        let bytes = self.bytes.value, chunk = self.chunk.value
        do {
            let t0 = now()
            let (image, tracker) = try openTracked(file, writable: true)
            guard bytes <= image.virtualSize else { throw fail("--bytes \(bytes) is past the \(image.virtualSize)-byte disk", code: 64) }
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
            try finish(image, tracked: tracker != nil, count: done, times: (t0, t1)) { total in "mib_per_s=\(fmt(Double(bytes) / 1048576 / total, 1))" }
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail("\(file): \(error)")
        }
    }
}

/// Flushes and closes after a write loop and prints the key=value timing line the scripts
/// parse: open (t0 to t1), writes (t1 to now), final flush + close, total, and `rate(total)`.
func finish(_ image: VHDXFile, tracked: Bool, count: Int, times: (open: Double, written: Double), rate: (Double) -> String) throws {
    let (t0, t1) = times
    let t2 = now()
    try image.flush()
    try image.close()
    let t3 = now()
    let total = t3 - t0
    print("count=\(count) tracked=\(tracked ? 1 : 0) open_s=\(fmt(t1 - t0)) write_s=\(fmt(t2 - t1)) flush_close_s=\(fmt(t3 - t2)) "
          + "total_s=\(fmt(total)) \(rate(total))")
}
