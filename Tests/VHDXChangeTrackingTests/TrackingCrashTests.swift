import Foundation
import Testing
import PropertyBased
import VHDX
import VHDXFormat
import VHDXTestSupport
@testable import VHDXChangeTracking

/// Model-based: random programs of writes, zeroes, trims, resizes, seals, flushes and reopens on
/// a tracked disk, with a crash injected at every flush point (unflushed writes torn), then a
/// reopen. For every change ID the program was given, `changes(since:)` must cover every
/// granule whose content differs from the content when it was sealed; after clean closes the
/// answer must be exactly the granules the program touched.
@Suite("Tracking under crashes")
struct TrackingCrashTests {
    /// One step, decoded from four small numbers so the generator shrinks well.
    enum Step: CustomStringConvertible {
        case write(UInt64, Int, UInt8), zero(UInt64, UInt64), trim(UInt64, UInt64), resize(UInt64), seal, flush, reopen

        init(_ code: Int, _ a: Int, _ b: Int, _ c: Int) {
            let offset = UInt64(a) * 4096 + UInt64(b % 8) * 512  // within 12 MiB; taken modulo the size
            switch code {
            case 0...3: self = .write(offset, [512, 4096, 65536, 1 << 20, 2 << 20][c % 5] + (b % 3) * 512, UInt8(1 + c % 250))
            case 4: self = .zero(offset, UInt64([4096, 1 << 20, 2 << 20][c % 3]))
            case 5: self = .trim(offset / (1 << 20) * (1 << 20), UInt64([1 << 20, 2 << 20][c % 2]))
            case 6: self = .resize(UInt64([4, 8, 12][c % 3]) << 20)
            case 7: self = .seal
            case 8: self = .flush
            default: self = .reopen
            }
        }

        var description: String {
            switch self {
            case let .write(o, n, v): "write(\(o), \(n), \(v))"
            case let .zero(o, n): "zero(\(o), \(n))"
            case let .trim(o, n): "trim(\(o), \(n))"
            case let .resize(s): "resize(\(s))"
            case .seal: "seal"
            case .flush: "flush"
            case .reopen: "reopen"
            }
        }
    }

    /// What a run acknowledged: each sealed ID with the content it names, and the granules
    /// touched since each seal (the exact answer after clean closes).
    final class Run {
        var sealed: [(ChangeID, [UInt8])] = []
        var touched: [Set<UInt64>] = []
        var crashed = false
        var error: String?
    }

    static let base: [UInt8] = { try! TrackedDisk.make(size: 8 << 20, history: 3).bytes }()

    /// Runs `steps` on `storage` (skipping steps that would leave the disk), stopping at a crash.
    /// `skipCoarse`: the tracker does not write its coarse marks (the break the test must catch).
    static func run(_ steps: [Step], on storage: Storage, skipCoarse: Bool = false) -> Run {
        let out = Run()
        do {
            var (image, tracker) = try TrackedDisk.open(storage)
            tracker.skipsCoarseMarks = skipCoarse
            func touch(_ r: Range<UInt64>) {
                let g = TrackedDisk.granule
                for i in out.touched.indices { for k in r.lowerBound / g..<(r.upperBound + g - 1) / g { out.touched[i].insert(k) } }
            }
            for step in steps {
                let size = image.virtualSize
                switch step {
                case let .write(o0, n, v):
                    let o = o0 % size
                    guard o + UInt64(n) <= size else { continue }
                    try image.write([UInt8](repeating: v, count: n), at: o)
                    touch(o..<o + UInt64(n))
                case let .zero(o0, n), let .trim(o0, n):
                    let o = o0 % size / 512 * 512
                    guard o + n <= size else { continue }
                    if case .zero = step { try image.writeZeroes(at: o, length: n) } else { try image.trim(at: o, length: n) }
                    touch(o..<o + n)
                case let .resize(s):
                    let minimum = try image.minimumSize()
                    guard s != size, s > size || minimum <= s else { continue }
                    try image.resize(to: s)
                    if s > size { touch(size..<s) } else {
                        let limit = (s + TrackedDisk.granule - 1) / TrackedDisk.granule
                        for i in out.touched.indices { out.touched[i] = out.touched[i].filter { $0 < limit } }
                    }
                case .seal:
                    let id = try tracker.seal()
                    let content = try TrackedDisk.content(image)
                    out.sealed.append((id, content))
                    out.touched.append(Set<UInt64>())
                case .flush:
                    try image.flush()
                case .reopen:
                    try image.close()
                    (image, tracker) = try TrackedDisk.open(storage)
                    tracker.skipsCoarseMarks = skipCoarse
                }
            }
            try image.close()
        } catch {
            out.crashed = true
            out.error = "\(error)"
        }
        return out
    }

    /// Every acknowledged ID still answers (or has expired from the history), and covers every
    /// granule that differs from its content. Returns the problems found.
    static func verify(_ bytes: [UInt8], _ run: Run, exact: Bool) throws -> [String] {
        var problems: [String] = []
        guard run.sealed.count == run.touched.count else { return ["sealed \(run.sealed.count) vs touched \(run.touched.count)"] }
        let (image, tracker) = try TrackedDisk.open(MemoryStorage(bytes, writable: false))
        let now = try TrackedDisk.content(image)
        for (k, (id, then)) in run.sealed.enumerated() {
            let answer: ChangeAnswer
            do { answer = try tracker.changes(since: id) } catch where error.reason == .expired {
                continue
            } catch {
                problems.append("\(id.epoch): \(error)")
                continue
            }
            let got = TrackedDisk.granules(answer)
            let limit = (image.virtualSize + TrackedDisk.granule - 1) / TrackedDisk.granule
            let differs = TrackedDisk.differingGranules(then, now).filter { $0 < limit }
            let missed = differs.subtracting(got)
            if !missed.isEmpty { problems.append("epoch \(id.epoch): granules \(missed.sorted().prefix(8)) changed but were not reported") }
            if exact && got != run.touched[k].filter({ $0 < limit }) {
                problems.append("epoch \(id.epoch): after clean closes reported \(got.sorted().prefix(8))…, touched \(run.touched[k].sorted().prefix(8))…")
            }
        }
        return problems
    }

    static let program = zip(Gen.int(in: 0...9), Gen.int(in: 0...3071), Gen.int(in: 0...255), Gen.int(in: 0...999)).array(of: 4...12)

    /// Seal first, so there is always an ID to ask about.
    static func steps(_ raw: [(Int, Int, Int, Int)]) -> [Step] {
        [.seal] + raw.map { Step($0.0, $0.1, $0.2, $0.3) }
    }

    @Test("clean runs: the answer is exactly the granules touched since each ID")
    func exactAfterCleanRuns() async {
        await propertyCheck(count: TestScale.count(30), input: TrackingCrashTests.program) { raw in
            let steps = TrackingCrashTests.steps(raw)
            let m = MemoryStorage(TrackingCrashTests.base, maxSize: 1 << 34)
            let run = TrackingCrashTests.run(steps, on: m)
            #expect(!run.crashed, "\(steps): \(run.error ?? "")")
            guard !run.crashed else { return }
            let problems = try TrackingCrashTests.verify(m.bytes, run, exact: true)
            #expect(problems.isEmpty, "\(steps): \(problems)")
        }
    }

    /// Crashes the program at every flush point of a clean run, each with torn writes.
    static func crashProblems(_ steps: [Step], skipCoarse: Bool = false) throws -> [String] {
        let clean = CrashStorage(TrackingCrashTests.base)
        _ = run(steps, on: clean, skipCoarse: skipCoarse)
        var problems: [String] = []
        // CrashStorage counts flushes from 0: points 0..<flushes crash, point `flushes` runs to the end.
        let sweep = CrashSweep("the program's flush points")
        for k in 0...clean.flushes {
            let storage = CrashStorage(TrackingCrashTests.base)
            storage.crashAtFlush = k
            let run = run(steps, on: storage, skipCoarse: skipCoarse)
            // A flush may persist the tracking state or not by the clock (every 30 s), so a
            // run's flush points can differ from the clean run's by one: a point that the run
            // did not reach is no problem, but some points must have crashed.
            if k < clean.flushes, run.crashed { sweep.visited("flush \(k)", crashed: true) }
            for seed in TestScale.seeds(2) {
                let image = run.crashed ? storage.crashImage(seed: seed &+ UInt64(k) &* 7919) : storage.volatile
                problems += try verify(image, run, exact: false).map { "flush \(k) \(TestScale.replay(seed: seed, filter: "TrackingCrashTests")): \($0)" }
                sweep.checkedResult()
                if !run.crashed { break }
            }
        }
        // A program without a flush has no crash point: the run to the end is all there is.
        return problems + (clean.flushes == 0 ? [] : sweep.problems)
    }

    @Test("a crash at every flush point never makes an answer too small")
    func crashAtEveryFlush() async {
        await propertyCheck(count: TestScale.count(8), input: TrackingCrashTests.program) { raw in
            let steps = TrackingCrashTests.steps(raw)
            let problems = try TrackingCrashTests.crashProblems(steps)
            #expect(problems.isEmpty, "\(steps): \(problems.prefix(5))")
        }
    }

    @Test("a crash after a shrink, before the open epoch's set is rewritten, is no damage (found by the long mode)")
    func crashBetweenShrinkAndPersist() throws {
        // The shrink commits the new tracked size with the header; the set still holds the grown
        // range until the next persist. Long mode (seeds 0–3 at flush 25) found this reset.
        let steps: [Step] = [.seal, .resize(12 << 20), .reopen, .resize(4 << 20), .write(0, 512, 1)]
        let problems = try TrackingCrashTests.crashProblems(steps)
        #expect(problems.isEmpty, "\(problems.prefix(3))")
    }

    @Test("without the write-ahead coarse map, crashes lose changes (the test above can fail)")
    func coarseMapIsWhatSavesIt() throws {
        // A seal, then writes in place into an allocated block with no flush between them and
        // the crash: only the coarse map can tell that they happened.
        let steps: [Step] = [.write(1 << 20, 65536, 1), .seal, .write(1 << 20, 4096, 2), .write(5 << 20, 4096, 3), .flush]
        let withMap = try TrackingCrashTests.crashProblems(steps)
        #expect(withMap.isEmpty, "\(withMap.prefix(5))")
        #expect(!(try TrackingCrashTests.crashProblems(steps, skipCoarse: true)).isEmpty)
    }
}
