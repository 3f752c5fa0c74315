import VHDXFormat

/// A sorted list of disjoint, non-adjacent runs of granules: a stored epoch set
/// (TRACKING-FORMAT.md §3). Each run is 16 bytes on disk: first granule, granule count.
public struct GranuleRun: Equatable, Sendable {
    public var start: UInt64
    public var count: UInt64
    public var end: UInt64 { start + count }
    public init(start: UInt64, count: UInt64) {
        self.start = start
        self.count = count
    }
}

public enum RunList {
    public static let runSize = 16

    /// The runs' bytes, padded to whole pages.
    public static func encode(_ runs: [GranuleRun]) -> [UInt8] {
        var w = ByteWriter(capacity: runs.count * runSize)
        for r in runs {
            w.write(r.start)
            w.write(r.count)
        }
        let pages = (w.bytes.count + TrackingGeometry.pageSize - 1) / TrackingGeometry.pageSize
        w.pad(to: pages * TrackingGeometry.pageSize)
        return w.bytes
    }

    /// CRC-32C of the runs' bytes (without padding).
    public static func checksum(_ runs: [GranuleRun]) -> UInt32 {
        CRC32C.checksum(encode(runs).prefix(runs.count * runSize))
    }

    /// Decodes `count` runs and checks them: the checksum, each run non-empty, sorted, disjoint
    /// and not touching the next (the encoder merges adjacent runs), all below `granuleLimit`.
    public static func decode(_ bytes: [UInt8], count: Int, checksum: UInt32, granuleLimit: UInt64, base: UInt64) throws(FormatError) -> [GranuleRun] {
        let s = "tracking run list"
        guard bytes.count >= count * runSize else { throw FormatError(.truncated, s, at: base, "\(count) runs need \(count * runSize) bytes") }
        let computed = CRC32C.checksum(bytes.prefix(count * runSize))
        guard computed == checksum else {
            throw FormatError(.badChecksum, s, at: base, "stored 0x\(String(checksum, radix: 16)), computed 0x\(String(computed, radix: 16))")
        }
        var runs: [GranuleRun] = []
        runs.reserveCapacity(count)
        var r = ByteReader(Array(bytes.prefix(count * runSize)), base: base, structure: s)
        var previousEnd: UInt64? = nil
        for i in 0..<count {
            let start = try r.readUInt64("start")
            let n = try r.readUInt64("count")
            let (end, overflow) = start.addingReportingOverflow(n)
            guard n > 0, !overflow, end <= granuleLimit else {
                throw FormatError(.outOfRange, s, field: "run \(i)", at: base + UInt64(i * runSize), "[\(start), +\(n)) is empty or past granule \(granuleLimit)")
            }
            if let p = previousEnd, start <= p {
                throw FormatError(.inconsistent, s, field: "run \(i)", at: base + UInt64(i * runSize), "starts at \(start), not after the previous run's end \(p)")
            }
            previousEnd = end
            runs.append(GranuleRun(start: start, count: n))
        }
        return runs
    }

    /// Merges runs until at most `capacity` remain, closing the smallest gaps first: the result
    /// covers every granule of the input (and the gaps it closed), never fewer.
    public static func coarsen(_ runs: [GranuleRun], to capacity: Int) -> [GranuleRun] {
        guard runs.count > capacity, capacity >= 1 else { return runs }
        // The gap size at or below which gaps close: the (count - capacity)-th smallest.
        var gaps: [UInt64] = []
        gaps.reserveCapacity(runs.count - 1)
        for i in 1..<runs.count { gaps.append(runs[i].start - runs[i - 1].end) }
        let sorted = gaps.sorted()
        let threshold = sorted[runs.count - capacity - 1]
        var out: [GranuleRun] = []
        var closeAtThreshold = runs.count - capacity - sorted.prefix { $0 < threshold }.count
        for r in runs {
            if var last = out.last {
                let gap = r.start - last.end
                let close = gap < threshold || (gap == threshold && closeAtThreshold > 0)
                if close {
                    if gap == threshold { closeAtThreshold -= 1 }
                    last.count = r.end - last.start
                    out[out.count - 1] = last
                    continue
                }
            }
            out.append(r)
        }
        return out
    }
}
