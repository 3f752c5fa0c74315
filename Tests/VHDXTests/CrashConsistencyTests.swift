import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

/// Crash at every flush point of representative operations, with unflushed writes torn at
/// random; the reopened image must open, check without corruption, and hold, sector by sector,
/// either the content from before the operation or the content after it.
@Suite("Crash consistency")
struct CrashConsistencyTests {
    static let diskSize: UInt64 = 8 << 20

    /// 8 MiB dynamic, 1 MiB blocks, 512-byte sectors; block 2 holds 0x11, the rest unallocated.
    static let base: [UInt8] = {
        let m = MemoryStorage()
        var o = CreateOptions(virtualSize: diskSize)
        o.blockSize = 1 << 20
        try! VHDXCreator.create(on: m, options: o)
        let image = try! VHDXFile(storage: m)
        try! image.write([UInt8](repeating: 0x11, count: 1 << 20), at: 2 << 20)
        try! image.close()
        return m.bytes
    }()

    struct Op: CustomStringConvertible, Sendable {
        let description: String
        let run: @Sendable (VHDXFile) throws -> Void
    }

    static let ops: [Op] = [
        Op(description: "write allocating a new block") { try $0.write([UInt8](repeating: 0xA1, count: 65536), at: (5 << 20) + 512) },
        Op(description: "overwrite inside an allocated block") { try $0.write([UInt8](repeating: 0xB2, count: 4096), at: (2 << 20) + 4096) },
        Op(description: "write spanning an allocated and a new block") { try $0.write([UInt8](repeating: 0xC3, count: 3 << 19), at: 5 << 19) },
        Op(description: "write filling three new blocks") { try $0.write([UInt8](repeating: 0xD4, count: 3 << 20), at: 4 << 20) },
        Op(description: "zero a whole allocated block") { try $0.writeZeroes(at: 2 << 20, length: 1 << 20) },
        Op(description: "trim a whole allocated block") { try $0.trim(at: 2 << 20, length: 1 << 20) },
        Op(description: "zero part of an allocated block") { try $0.writeZeroes(at: (2 << 20) + 1000 * 512, length: 8192) },
        Op(description: "two allocating writes, one commit each") { image in
            try image.write([UInt8](repeating: 0xE5, count: 512), at: 0)
            try image.write([UInt8](repeating: 0xF6, count: 512), at: 7 << 20)
        },
        Op(description: "grow past the BAT's region (relocating it)") { try $0.resize(to: 200 << 30) },
        Op(description: "shrink over unallocated space") { try $0.resize(to: 4 << 20) },
        Op(description: "compact: release a zeroed block and move another down") { image in
            try image.write([UInt8](repeating: 0, count: 1 << 20), at: 2 << 20)
            try image.write([UInt8](repeating: 0x99, count: 4096), at: 6 << 20)
            _ = try image.compact()
        },
    ]

    /// The first 4 MiB (every size an op leaves holds them) plus the virtual size, which must be
    /// either the old or the new one.
    static func content(_ bytes: [UInt8]) throws -> [UInt8] {
        let image = try VHDXFile(storage: MemoryStorage(bytes, writable: false))
        var size = ByteWriter()
        size.write(image.virtualSize)
        let n = Int(min(image.virtualSize, diskSize))
        return size.bytes + (try image.read(at: 0, count: n)) + [UInt8](repeating: 0, count: Int(diskSize) - n)
    }

    /// Runs open → op → flush → close on `storage`; returns false if it crashed.
    static func session(_ storage: CrashStorage, _ op: Op) -> Bool {
        do {
            let image = try VHDXFile(storage: storage)
            try op.run(image)
            try image.flush()
            try image.close()
            return true
        } catch {
            return false
        }
    }

    @Test("crash at every flush point", arguments: ops)
    func crashEverywhere(_ op: Op) throws {
        let before = try CrashConsistencyTests.content(CrashConsistencyTests.base)
        let clean = CrashStorage(CrashConsistencyTests.base)
        #expect(CrashConsistencyTests.session(clean, op))
        let after = try CrashConsistencyTests.content(clean.volatile)
        #expect(after != before || op.description.contains("nothing"))
        #expect(try Checker.check(storage: MemoryStorage(clean.durable, writable: false)).exitCode == 0)
        let flushPoints = clean.flushes
        #expect(flushPoints >= 4)
        let sweep = CrashSweep("\(op)")
        for k in 0..<flushPoints {
            let storage = CrashStorage(CrashConsistencyTests.base)
            storage.crashAtFlush = k
            #expect(!CrashConsistencyTests.session(storage, op), "no crash at flush \(k)")
            sweep.visited("flush \(k)", crashed: storage.crashed)
            for seed in TestScale.seeds(3) {
                let image = storage.crashImage(seed: seed &* 7919 &+ UInt64(k))
                let context = "\(op) crash at flush \(k)/\(flushPoints) \(TestScale.replay(seed: seed, filter: "CrashConsistencyTests/crashEverywhere"))"
                let report = try Checker.check(storage: MemoryStorage(image, writable: false))
                #expect(report.corruptions == 0, "\(context): \(report.findings)")
                let got = try CrashConsistencyTests.content(image)
                if got == after { sweep.checkedResult() }
                var mixed: [Int] = []
                if got != before && got != after {
                    #expect(got.prefix(8) == before.prefix(8) || got.prefix(8) == after.prefix(8), "\(context): size neither old nor new")
                    // Every sector, the last one included.
                    for s in stride(from: 8, through: got.count - 512, by: 512) where !sameSector(got, before, s) && !sameSector(got, after, s) {
                        mixed.append(s)
                    }
                }
                #expect(mixed.isEmpty, "\(context): sectors neither old nor new at \(mixed.prefix(4))")
                // A writable reopen replays into the file; the result reads the same and checks clean.
                let m = MemoryStorage(image)
                let reopened = try VHDXFile(storage: m)
                try reopened.close()
                #expect(try CrashConsistencyTests.content(m.bytes) == got, "\(context): replay changed content")
                #expect(try Checker.check(storage: MemoryStorage(m.bytes, writable: false)).corruptions == 0, "\(context) after replay")
            }
        }
        #expect(sweep.problems.isEmpty || op.description.contains("nothing"), "\(sweep.problems)")
        // Once flush() returned, the new content is durable whatever else is lost.
        let durable = try CrashConsistencyTests.content(clean.crashImage(seed: 1))
        #expect(durable == after)
    }

    /// A writable open writes nothing; its first write renews FileWriteGuid and replays the
    /// pending log into the file (`WriteGate`). A crash at every flush point of that session
    /// leaves an image that checks clean, still reads the replayed content, and holds the
    /// write either whole or not at all.
    @Test func crashDuringTheFirstWritesReplay() throws {
        let dirty = Array(try Data(contentsOf: URL(fileURLWithPath: try Fixtures.path("iotest-dirtylog-10G-4M.vhdx"))))
        let at: UInt64 = 100 << 20
        let old = try VHDXFile(storage: MemoryStorage(dirty, writable: false)).read(at: at, count: 4096)
        let new = [UInt8](repeating: 0x5C, count: 4096)
        func session(_ storage: CrashStorage) -> Bool {
            do {
                let image = try VHDXFile(storage: storage)
                try image.write(new, at: at)
                try image.close()
                return true
            } catch { return false }
        }
        let clean = CrashStorage(dirty)
        #expect(session(clean))
        #expect(clean.flushes >= 6, "FileWriteGuid, replay, LogGuid cleared, the write's commit, close")
        let sweep = CrashSweep("the first write's replay")
        for k in 0..<clean.flushes {
            let storage = CrashStorage(dirty)
            storage.crashAtFlush = k
            #expect(!session(storage), "no crash at flush \(k)")
            sweep.visited("flush \(k)", crashed: storage.crashed)
            for seed in TestScale.seeds(2) {
                let crashed = storage.crashImage(seed: seed &* 7919 &+ UInt64(k))
                let context = "crash at flush \(k) \(TestScale.replay(seed: seed, filter: "CrashConsistencyTests/crashDuringTheFirstWritesReplay"))"
                #expect(try Checker.check(storage: MemoryStorage(crashed, writable: false)).corruptions == 0, "\(context)")
                let image = try VHDXFile(storage: MemoryStorage(crashed, writable: false))
                #expect(try image.read(at: 17 << 20, count: 4096).allSatisfy { $0 == 0xa5 }, "\(context): the logged block lost")
                let w = try image.read(at: at, count: 4096)
                #expect(w == old || w == new, "\(context): the write is torn")
                if w == new { sweep.checkedResult() }
            }
        }
        #expect(sweep.problems.isEmpty, "\(sweep.problems)")
    }

    /// Enough commits in one session that the 1 MiB log ring wraps several times; then a crash
    /// at every flush point of the next operations. The newest valid entry, wherever it sits in
    /// the ring, must be the one replayed.
    @Test func crashAfterTheLogWraps() throws {
        func churn(_ image: VHDXFile, _ i: Int) throws {
            // Each allocation or release is one log entry of two 4 KiB sectors.
            if i % 2 == 0 { try image.write([UInt8(truncatingIfNeeded: i | 1)], at: 3 << 20) }
            else { try image.writeZeroes(at: 3 << 20, length: 1 << 20) }
        }
        let warmup = 140  // 140 entries x 8 KiB = 1.1 MiB: more than the 1 MiB ring holds, so it wraps
        let clean = CrashStorage(CrashConsistencyTests.base)
        let image = try VHDXFile(storage: clean)
        for i in 0..<warmup { try churn(image, i) }
        #expect(image.journal.sequence >= UInt64(warmup))
        let flushesAtWarmup = clean.flushes
        try image.write([UInt8](repeating: 0x5C, count: 4096), at: 6 << 20)
        try image.flush()
        let after = try CrashConsistencyTests.content(clean.volatile)
        let total = clean.flushes
        let sweep = CrashSweep("after the log wraps")
        for k in flushesAtWarmup..<total {
            let storage = CrashStorage(CrashConsistencyTests.base)
            storage.crashAtFlush = k
            var beforeContent: [UInt8] = []
            do {
                let img = try VHDXFile(storage: storage)
                for i in 0..<warmup { try churn(img, i) }
                beforeContent = try CrashConsistencyTests.content(storage.volatile)
                try img.write([UInt8](repeating: 0x5C, count: 4096), at: 6 << 20)
                try img.flush()
                Issue.record("no crash at flush \(k)")
            } catch {}
            sweep.visited("flush \(k)", crashed: storage.crashed)
            for seed in TestScale.seeds(3) {
                let crashed = storage.crashImage(seed: seed &+ UInt64(k) &* 31)
                let context = "flush \(k) \(TestScale.replay(seed: seed, filter: "CrashConsistencyTests/crashAfterTheLogWraps"))"
                #expect(try Checker.check(storage: MemoryStorage(crashed, writable: false)).corruptions == 0, "\(context)")
                let got = try CrashConsistencyTests.content(crashed)
                #expect(got == beforeContent || got == after, "\(context): neither the state before the write nor after")
                if got == after { sweep.checkedResult() }
            }
        }
        #expect(sweep.problems.isEmpty, "\(sweep.problems)")
    }
}

