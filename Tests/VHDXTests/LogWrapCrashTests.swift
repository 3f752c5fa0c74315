import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

/// The log must never lose an acknowledged entry: an entry that reaches the end of the ring
/// and goes back to offset 0 must not overwrite entries that replay may still need.
///
/// The case: a 160 GiB dynamic disk (1 MiB blocks, 1 MiB log), one session of 12 small
/// allocating writes (one 8 KiB entry each, so the ring position moves to 96 KiB), then
/// `writeZeroes` over 129,024 blocks, whose ~250 BAT sectors are split into entries of up to
/// half the ring: the first sits at [96 KiB, 604 KiB), the second no longer fits after it and
/// goes to offset 0, over the first. Crash at every flush point with several tear seeds: every
/// image must open, check clean, and read, sector by sector, as after the last acknowledged op
/// or as after the op in flight.
@Suite("Log wrap crash consistency")
struct LogWrapCrashTests {
    static let MiB: UInt64 = 1 << 20
    static let zeroedBlocks: UInt64 = 129_024
    /// The blocks the small writes allocate (all inside the zeroed range).
    static let writeBlocks: [UInt64] = (0..<12).map { UInt64($0) * 10_007 }

    static let base: [UInt8] = {
        let m = MemoryStorage()
        var o = CreateOptions(virtualSize: 160 << 30)
        o.blockSize = UInt32(MiB)
        try! VHDXCreator.create(on: m, options: o)
        precondition(try! VHDXFile(storage: MemoryStorage(m.bytes, writable: false)).header.logLength == UInt32(MiB))
        // Slack the 12 blocks reuse (cleared first) instead of growing the file, which is slow
        // in test storages in a debug build.
        return m.bytes + [UInt8](repeating: 0, count: Int(13 * MiB))
    }()

    /// The ops of the session, in order; each is acknowledged when it returns.
    static let ops: [@Sendable (VHDXFile) throws -> Void] =
        writeBlocks.enumerated().map { i, block in
            { @Sendable image in try image.write([UInt8](repeating: UInt8(0x30 + i), count: 4096), at: block * MiB + 4096) }
        } + [{ @Sendable image in try image.writeZeroes(at: 0, length: zeroedBlocks * MiB) }]

    /// The virtual size, then 16 KiB at the start of every written block.
    static func content(_ bytes: [UInt8]) throws -> [UInt8] {
        let image = try VHDXFile(storage: MemoryStorage(bytes, writable: false))
        var w = ByteWriter()
        w.write(image.virtualSize)
        var out = w.bytes
        for block in writeBlocks { out += try image.read(at: block * MiB, count: 16384) }
        return out
    }

    @Test func aWrappingEntryNeverDestroysTheEntryReplayNeeds() throws {
        // The clean run: the content after each op (index 0: before any).
        let clean = CrashStorage(LogWrapCrashTests.base)
        var after: [[UInt8]] = [try LogWrapCrashTests.content(clean.volatile)]
        let image = try VHDXFile(storage: clean)
        for op in LogWrapCrashTests.ops {
            try op(image)
            after.append(try LogWrapCrashTests.content(clean.volatile))
        }
        try image.flush()
        try image.close()
        #expect(after.last! != after[after.count - 2])
        let flushPoints = clean.flushes
        var failures = 0
        let sweep = CrashSweep("the log's wrap")
        for k in 0..<flushPoints {
            let storage = CrashStorage(LogWrapCrashTests.base)
            storage.crashAtFlush = k
            var acknowledged = 0
            do {
                let img = try VHDXFile(storage: storage)
                for op in LogWrapCrashTests.ops {
                    try op(img)
                    acknowledged += 1
                }
                try img.flush()
                try img.close()
                Issue.record("no crash at flush \(k)")
            } catch {}
            sweep.visited("flush \(k)", crashed: storage.crashed)
            // Ops after the last acknowledged one never started, except the one in flight.
            let old = after[acknowledged], new = after[min(acknowledged + 1, after.count - 1)]
            for seed in TestScale.seeds(6) {
                let crashed = storage.crashImage(seed: seed &* 7919 &+ UInt64(k))
                let context = "crash at flush \(k)/\(flushPoints) (\(acknowledged) ops acknowledged) \(TestScale.replay(seed: seed, filter: "LogWrapCrashTests"))"
                let got: [UInt8]
                do { got = try LogWrapCrashTests.content(crashed) } catch {
                    Issue.record("\(context): does not open: \(error)")
                    failures += 1
                    continue
                }
                sweep.checkedResult()
                var mixed: [Int] = []
                for s in stride(from: 8, to: got.count, by: 512) where !sameSector(got, old, s) && !sameSector(got, new, s) { mixed.append(s) }
                #expect(got.prefix(8) == old.prefix(8), "\(context): virtual size changed")
                #expect(mixed.isEmpty, "\(context): sectors neither as after the last acknowledged op nor the one in flight at \(mixed.prefix(4))")
                if !mixed.isEmpty { failures += 1 }
                let report = try Checker.check(storage: MemoryStorage(crashed, writable: false))
                #expect(report.corruptions == 0, "\(context): \(report.findings)")
                // A writable reopen replays into the file and reads the same.
                let m = MemoryStorage(crashed)
                let reopened = try VHDXFile(storage: m)
                try reopened.close()
                #expect(try sameBytes(LogWrapCrashTests.content(m.bytes), got), "\(context): replay changed content")
            }
        }
        #expect(failures == 0, "\(failures) of \(flushPoints * 6) crash images lost an acknowledged entry")
    }
}
