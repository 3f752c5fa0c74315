/// A byte range of the virtual disk.
public struct ChangedRange: Equatable, Sendable {
    public var offset: UInt64
    public var length: UInt64
    public var end: UInt64 { offset + length }
    public init(offset: UInt64, length: UInt64) {
        self.offset = offset
        self.length = length
    }
}

/// An answer to `changes(since:)`, shaped like QueryChangesVirtualDisk's: the ranges found,
/// and how far the scan got, so a caller asking for at most N ranges pages by calling again
/// from `offset + processed`.
public struct ChangeAnswer: Equatable, Sendable {
    public var ranges: [ChangedRange]
    /// Bytes of the asked range that the ranges account for (the whole range, unless the
    /// answer stopped at `maxRanges`).
    public var processed: UInt64
    /// False when a set it includes was coarsened (stored over its slot's capacity, or a coarse
    /// map folded in after an unclean stop): the ranges then cover more than was written.
    public var exact: Bool = true
    public var changedBytes: UInt64 { ranges.reduce(0) { $0 + $1.length } }
}

extension ChangedRange {
    /// The union of sorted range lists, sorted and merged (touching ranges join).
    package static func union(_ lists: [[ChangedRange]]) -> [ChangedRange] {
        var all = lists.flatMap { $0 }
        guard !all.isEmpty else { return [] }
        if lists.filter({ !$0.isEmpty }).count > 1 { all.sort { $0.offset < $1.offset } }
        var out: [ChangedRange] = [all[0]]
        for r in all.dropFirst() {
            if r.offset <= out[out.count - 1].end {
                out[out.count - 1].length = max(out[out.count - 1].end, r.end) - out[out.count - 1].offset
            } else {
                out.append(r)
            }
        }
        return out
    }

    /// Sorted, merged `ranges` clipped to [offset, offset + length) and the disk's `size`, at
    /// most `maxRanges`; `processed` says how far the answer got (QueryChangesVirtualDisk's paging).
    static func window(_ ranges: [ChangedRange], offset: UInt64, length: UInt64?, size: UInt64, maxRanges: Int) -> ChangeAnswer {
        let start = min(offset, size)
        let end = length.map { $0 > size - start ? size : start + $0 } ?? size
        guard maxRanges > 0 else { return ChangeAnswer(ranges: [], processed: 0) }
        // The first range that reaches past `start`: a page deep into a large answer skips the rest.
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].end <= start { lo = mid + 1 } else { hi = mid }
        }
        var out: [ChangedRange] = []
        for r in ranges[lo...] {
            let a = max(start, r.offset), b = min(end, r.end)
            if a >= end { break }
            guard a < b else { continue }
            if out.count == maxRanges { return ChangeAnswer(ranges: out, processed: out.last!.end - start) }
            out.append(ChangedRange(offset: a, length: b - a))
        }
        return ChangeAnswer(ranges: out, processed: end - start)
    }
}
