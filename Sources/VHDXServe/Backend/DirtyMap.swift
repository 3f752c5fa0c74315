import VHDXChangeTracking

/// One `qemu:dirty-bitmap:<change ID>` context: the ranges tracking says changed since the ID
/// (sorted, disjoint), answered by binary search, so a map of many scattered ranges costs
/// what it returns.
struct DirtyMap {
    static let dirty: UInt32 = 1  // NBD_STATE_DIRTY
    let ranges: [ChangedRange]
    let size: UInt64

    init(ranges: [ChangedRange], size: UInt64) {
        // Tracking answers sorted and merged; made certain here, as a binary search needs it.
        var sorted = ranges.filter { $0.length > 0 }
        if !zip(sorted, sorted.dropFirst()).allSatisfy({ $0.end <= $1.offset }) {
            sorted.sort { $0.offset < $1.offset }
            var merged: [ChangedRange] = []
            for r in sorted {
                if let last = merged.last, r.offset <= last.end {
                    merged[merged.count - 1].length = max(last.end, r.end) - last.offset
                } else { merged.append(r) }
            }
            sorted = merged
        }
        self.ranges = sorted
        self.size = size
    }

    /// The index of the first range ending after `offset`.
    func firstRange(endingAfter offset: UInt64) -> Int {
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].end <= offset { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    func extents(at offset: UInt64, length: UInt64, alignment: UInt32, maxExtents: Int) -> [BlockStatusExtent] {
        var out = ExtentPieces(alignment: alignment, maxExtents: maxExtents)
        let end = min(size, offset + length)
        var v = offset
        var i = firstRange(endingAfter: offset)
        while v < end {
            let (e, f): (UInt64, UInt32)
            if i < ranges.count, ranges[i].offset <= v {
                (e, f) = (min(end, ranges[i].end), DirtyMap.dirty)
                i += 1
            } else {
                (e, f) = (min(end, i < ranges.count ? ranges[i].offset : end), 0)
            }
            guard out.append(e - v, flags: f) else { break }
            v = e
        }
        return out.extents
    }
}
