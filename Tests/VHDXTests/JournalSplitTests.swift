import Testing
@testable import VHDX
import VHDXFormat

/// However many updates one change logs, the split never makes an entry larger than half the
/// ring (nor than replay accepts), and covers every update once, in order.
@Suite("Journal entry split")
struct JournalSplitTests {
    static let MiB: UInt64 = 1 << 20
    /// Log lengths from the minimum to the largest a u32 LogLength allows.
    static let logLengths: [UInt64] = [1, 2, 3, 8, 32, 64, 127, 128, 129, 256, 1000, 4095].map { $0 * MiB }

    @Test(arguments: logLengths)
    func everySplitFitsTheRule(logLength: UInt64) {
        let limit = Journal.maxEntryBytes(logLength: logLength)
        #expect(limit <= logLength / 2 && limit <= UInt64(LogSequence.maxEntryBytes))
        let per = Journal.maxUpdatesPerEntry(logLength: logLength)
        // The bound is tight: one more update would not fit.
        #expect(JournalSplitTests.entryBytes(per) <= limit)
        #expect(JournalSplitTests.entryBytes(per + 1) > limit)
        for count in [0, 1, per - 1, per, per + 1, 2 * per, 2 * per + 1, 5 * per + 3] {
            let ranges = Journal.entryRanges(updateCount: count, logLength: logLength)
            #expect(ranges.map(\.count).reduce(0, +) == count)
            #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
            #expect(ranges.first?.lowerBound ?? 0 == 0)
            for r in ranges { #expect(!r.isEmpty && JournalSplitTests.entryBytes(r.count) <= limit, "\(count) updates in a \(logLength)-byte log: \(r)") }
        }
    }

    /// The size formula above is the size the encoder produces.
    @Test(arguments: [1, 125, 126, 127, 254, 255, 256, 1000])
    func entryBytesMatchTheEncoder(updates: Int) {
        let u = (0..<updates).map { LogEntry.Update.data(fileOffset: UInt64($0) * 4096, bytes: [UInt8](repeating: 0, count: 4096)) }
        let e = LogEntry.encode(updates: u, sequenceNumber: 1, tail: 0, logGUID: .random(), flushedFileOffset: 0, lastFileOffset: 0)
        #expect(UInt64(e.count) == JournalSplitTests.entryBytes(updates))
    }

    /// Bytes of an entry of `n` data updates: descriptor sectors plus one data sector each.
    static func entryBytes(_ n: Int) -> UInt64 {
        UInt64(LogEntryHeader.descriptorSectors(count: UInt64(n)) + UInt64(n)) * 4096
    }
}
