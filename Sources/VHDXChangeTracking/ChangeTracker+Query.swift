import VHDX
import VHDXFormat

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

extension ChangeTracker {
    /// Every byte range whose content may differ from what it was when `since` was sealed,
    /// until now or until `until` was sealed, within [offset, offset + length) (default: to
    /// the end of the disk), at most `maxRanges` ranges. Never smaller than the truth; after
    /// clean closes exactly the granules written (trims and zeroes count).
    ///
    /// Throws `ChangeTrackingError` when the question cannot be answered (unknown, expired,
    /// another disk's, reset since), `VHDXError` when the disk cannot be read.
    public func changes(since: ChangeID, until: ChangeID? = nil, offset: UInt64 = 0, length: UInt64? = nil,
                        maxRanges: Int = .max) throws -> ChangeAnswer {
        let from = try answerableEpoch(since, role: "since")
        var to: UInt64? = nil
        if let until {
            let u = try answerableEpoch(until, role: "until")
            guard u >= from else {
                throw ChangeTrackingError(.unknownID, "--until \(until) was sealed before --since \(since)", path: path)
            }
            to = u
        }
        let size = image.virtualSize
        let start = min(offset, size)
        let end = length.map { min(size, start &+ $0 < start ? size : start + $0) } ?? size
        // Sets to union: the records after `from` (up to `to`), and the open epoch for "now".
        var lists: [[GranuleRun]] = []
        var exact = true
        for r in header.records where r.epoch > from && (to.map { r.epoch <= $0 } ?? true) {
            if r.flags & StoredSet.Flag.coarsened != 0 { exact = false }
            do {
                lists.append(try readSet(slot: r.slot, count: r.runCount, flags: r.flags, checksum: r.checksum))
            } catch {
                throw ChangeTrackingError(.reset, "the change set of epoch \(r.epoch) is damaged (\(error.message)); this ID can no longer be answered", path: path)
            }
        }
        if to == nil {
            lists.append(current.runs())
            if currentCoarsened { exact = false }
        }
        var a = answer(merge(lists), from: start, to: end, maxRanges: maxRanges)
        a.exact = exact
        return a
    }

    /// The epoch of `id` if this disk can answer from it, else the reason it cannot.
    func answerableEpoch(_ id: ChangeID, role: String) throws -> UInt64 {
        if id.virtualDiskID != image.layout.virtualDiskID {
            throw ChangeTrackingError(.otherDisk, "\(id) was sealed on the disk {\(id.virtualDiskID)}, this is {\(image.layout.virtualDiskID)}", path: path)
        }
        if let (_, text) = pendingReset {
            throw ChangeTrackingError(.reset, "\(text); tracking resumes from the next seal", path: path)
        }
        guard id.trackingID == header.trackingID else {
            throw ChangeTrackingError(.unknownID, "\(id) was not sealed by this disk's tracking (tracking was disabled and enabled again since, or the ID is not this disk's)", path: path)
        }
        if id.generation < header.generation {
            let why = header.resetText.isEmpty ? "tracking was reset" : header.resetText
            throw ChangeTrackingError(.reset, "\(why) (reset at \(header.resetTime) s since 1970, after \(id) was sealed); tracking resumes from the next seal", path: path)
        }
        guard id.generation == header.generation, let latest = header.latestSealedEpoch, id.epoch <= latest, id.epoch >= header.generationStartEpoch else {
            throw ChangeTrackingError(.unknownID, "\(id) was never sealed on this disk", path: path)
        }
        guard let oldest = header.oldestAnswerableEpoch, id.epoch >= oldest else {
            throw ChangeTrackingError(.expired, "\(id) is older than the history this disk retains (\(header.geometry.historyLimit) epochs; the oldest answerable ID is \(header.oldestAnswerableEpoch.map { self.id(epoch: $0).description } ?? "none"))", path: path)
        }
        return id.epoch
    }

    /// Sorted, disjoint, merged runs of the union of sorted lists.
    func merge(_ lists: [[GranuleRun]]) -> [GranuleRun] {
        var all = lists.flatMap { $0 }
        guard !all.isEmpty else { return [] }
        if lists.count > 1 { all.sort { $0.start < $1.start } }
        var out: [GranuleRun] = [all[0]]
        for r in all.dropFirst() {
            if r.start <= out[out.count - 1].end {
                out[out.count - 1].count = max(out[out.count - 1].end, r.end) - out[out.count - 1].start
            } else {
                out.append(r)
            }
        }
        return out
    }

    /// Granule runs as byte ranges clipped to [start, end), at most `maxRanges`.
    func answer(_ runs: [GranuleRun], from start: UInt64, to end: UInt64, maxRanges: Int) -> ChangeAnswer {
        let g = header.geometry.granule
        var ranges: [ChangedRange] = []
        guard maxRanges > 0 else { return ChangeAnswer(ranges: [], processed: 0) }
        // First run that can reach `start`.
        var lo = 0, hi = runs.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if runs[mid].end * g <= start { lo = mid + 1 } else { hi = mid }
        }
        for r in runs[lo...] {
            let a = max(start, r.start * g), b = min(end, r.end * g)
            if a >= end { break }
            guard a < b else { continue }
            if ranges.count == maxRanges {
                return ChangeAnswer(ranges: ranges, processed: ranges.last!.end - start)
            }
            ranges.append(ChangedRange(offset: a, length: b - a))
        }
        return ChangeAnswer(ranges: ranges, processed: end - start)
    }
}
