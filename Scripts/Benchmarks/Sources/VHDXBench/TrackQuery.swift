import ArgumentParser
import VHDX
import VHDXChangeTracking

struct TrackQuery: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "track-query",
        abstract: "Asks changes(since:) and checks the answer against the granules a write plan touched.",
        discussion: """
            Opens FILE (writable with --seal 1, else read-only) with tracking, optionally seals, then asks \
            changes(since: SINCE_ID). The answer must cover every granule the plan (random-writes' with \
            --count/--seed, or seq-writes' with --seq-bytes) wrote: exit 2 otherwise. exact=1 when it is \
            exactly them (what clean closes give unless a set outgrew its slot and was coarsened). Prints \
            open/seal/changes times in ms and the answer's size against the plan's.
            """
    )
    @Argument(help: "A tracked VHDX image.") var file: String
    @Argument(help: "The change ID to ask from.") var since: String
    @Option(help: "1: seal first (opens writable).") var seal = Count(0)
    @Option(help: "Number of writes of the plan.") var count: Count?
    @Option(help: "Seed of the plan.") var seed: Count?
    @Option(name: .customLong("write-size"), help: "Bytes per write of the plan.") var writeSize = Count(defaultWriteSize)
    @Option(help: "1: the plan drew distinct offsets.") var distinct = Count(0)
    @Option(name: .customLong("seq-bytes"), help: "The plan was seq-writes of this many bytes.") var seqBytes: Count?

    func validate() throws {
        guard (seqBytes == nil) != (count == nil || seed == nil) else {
            throw ValidationError("give either --count and --seed, or --seq-bytes")
        }
    }

    func run() throws {
        guard let sinceID = ChangeID(text: since) else { throw fail("not a change ID: \(since)", code: 64) }
        do {
            let t0 = now()
            let (image, tracker) = try openTracked(file, writable: seal.value != 0)
            guard let tracker else { throw fail("\(file): change tracking is not enabled") }
            let t1 = now()
            var sealed = ""
            if seal.value != 0 { sealed = try tracker.seal().description }
            let t2 = now()
            let answer = try tracker.changes(since: sinceID)
            let t3 = now()
            try image.close()
            let t4 = now()
            let expected = plannedRanges(granule: tracker.status.granule, size: image.virtualSize)
            try requireCovered(expected, by: answer)
            let exact = answer.ranges == expected
            let expectedBytes = expected.reduce(0) { $0 + $1.length }
            print("ok=1 exact=\(exact ? 1 : 0) open_ms=\(fmt((t1 - t0) * 1000, 3)) seal_ms=\(fmt((t2 - t1) * 1000, 3)) changes_ms=\(fmt((t3 - t2) * 1000, 3)) "
                  + "close_ms=\(fmt((t4 - t3) * 1000, 3)) ranges=\(answer.ranges.count) changed_bytes=\(answer.changedBytes) "
                  + "expected_ranges=\(expected.count) expected_bytes=\(expectedBytes)"
                  + (seal.value != 0 ? " sealed=\(sealed)" : ""))
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail("\(file): \(error)")
        }
    }

    /// The granules the plan wrote, as sorted merged ranges.
    func plannedRanges(granule g: UInt64, size: UInt64) -> [ChangedRange] {
        var runs: [(UInt64, UInt64)] = []
        if let seq = seqBytes?.value {
            if seq > 0 { runs = [(0, (seq + g - 1) / g)] }
        } else {
            var granules = Set<UInt64>()
            let w = writeSize.value
            for write in WritePlan(size: size, count: Int(count!.value), seed: seed!.value, writeSize: w, distinct: distinct.value != 0) {
                for k in write.offset / g..<(write.offset + w + g - 1) / g { granules.insert(k) }
            }
            for k in granules.sorted() {
                if let last = runs.last, last.1 == k { runs[runs.count - 1].1 = k + 1 } else { runs.append((k, k + 1)) }
            }
        }
        return runs.map { ChangedRange(offset: $0.0 * g, length: min(($0.1 - $0.0) * g, size - $0.0 * g)) }
    }

    /// Never smaller than the truth: every written range must be covered (exit 2 otherwise).
    func requireCovered(_ expected: [ChangedRange], by answer: ChangeAnswer) throws {
        var j = 0
        for e in expected {
            var at = e.offset
            while at < e.end {
                while j < answer.ranges.count && answer.ranges[j].end <= at { j += 1 }
                guard j < answer.ranges.count, answer.ranges[j].offset <= at else {
                    throw fail("\(file): changes(since:) misses written bytes at \(at) (within the written range \(e.offset)+\(e.length)): "
                               + "\(answer.ranges.count) ranges (\(answer.changedBytes) bytes), expected \(expected.count) (\(expected.reduce(0) { $0 + $1.length }) bytes)", code: 2)
                }
                at = Swift.min(e.end, answer.ranges[j].end)
            }
        }
    }
}
