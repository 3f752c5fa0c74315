import VHDX
import VHDXFormat

extension ChangeTracker {
    /// Every byte range whose content may differ from what it was when `since` was sealed,
    /// until now or until `until` was sealed, within [offset, offset + length) (default: to
    /// the end of the disk), at most `maxRanges` ranges. Never smaller than the truth; after
    /// clean closes exactly the granules written (trims and zeroes count).
    ///
    /// Throws when the question cannot be answered (unknown, expired, another disk's, reset
    /// since), or with reason `.engine` when the disk cannot be read.
    public func changes(since: ChangeID, until: ChangeID? = nil, offset: UInt64 = 0, length: UInt64? = nil,
                        maxRanges: Int = .max) throws(ChangeTrackingError) -> ChangeAnswer {
        let from = try answerableEpoch(since)
        var to: UInt64? = nil
        if let until {
            let u = try answerableEpoch(until)
            guard u >= from else {
                throw ChangeTrackingError(.unknownID, "the until ID \(until) was sealed before the since ID \(since)", path: path)
            }
            to = u
        }
        // Sets to union: the records after `from` (up to `to`), and the open epoch for "now".
        var lists: [[GranuleRun]] = []
        var exact = true
        for r in header.records where r.epoch > from && (to.map { r.epoch <= $0 } ?? true) {
            if r.flags & StoredSet.Flag.coarsened != 0 { exact = false }
            do {
                lists.append(try readSet(slot: r.slot, count: r.runCount, flags: r.flags, checksum: r.checksum))
            } catch {
                if error.code == .io { throw ChangeTrackingError(error) }
                throw ChangeTrackingError(.reset, "the change set of epoch \(r.epoch) is damaged (\(error.message)); this ID can no longer be answered", path: path)
            }
        }
        if to == nil {
            lists.append(current.runs())
            if currentCoarsened { exact = false }
        }
        let g = header.geometry.granule
        let ranges = ChangedRange.union(lists.map { $0.map { ChangedRange(offset: $0.start * g, length: $0.count * g) } })
        var a = ChangedRange.window(ranges, offset: offset, length: length, size: image.virtualSize, maxRanges: maxRanges)
        a.exact = exact
        return a
    }

    /// The epoch of `id` if this disk can answer from it, else the reason it cannot.
    func answerableEpoch(_ id: ChangeID) throws(ChangeTrackingError) -> UInt64 {
        if id.virtualDiskID != image.layout.virtualDiskID {
            throw ChangeTrackingError(.otherDisk, "\(id) was sealed on the disk {\(id.virtualDiskID)}, this is {\(image.layout.virtualDiskID)}", path: path)
        }
        if let (_, text) = pendingReset {
            throw ChangeTrackingError(.reset, "\(text); tracking resumes from the next seal", path: path)
        }
        if let child = image.chain.first(where: { $0.parentLink?.match == .ignored }) {
            throw ChangeTrackingError(.reset, "\(child.path) was opened over a parent whose DataWriteGuid matches neither of its linkages: what it reads changed outside change tracking", path: path)
        }
        guard id.trackingID == header.trackingID else {
            throw ChangeTrackingError(.unknownID, "\(id) was not sealed by this disk's tracking (tracking was disabled and enabled again since, or the ID is not this disk's)", path: path)
        }
        if id.generation < header.generation {
            let why = header.resetText.isEmpty ? "tracking was reset" : header.resetText
            throw ChangeTrackingError(.reset, "\(why) (reset at \(UTCTime.iso8601(seconds: header.resetTime)), after \(id) was sealed); tracking resumes from the next seal", path: path)
        }
        guard id.generation == header.generation, let latest = header.latestSealedEpoch, id.epoch <= latest, id.epoch >= header.generationStartEpoch else {
            throw ChangeTrackingError(.unknownID, "\(id) was never sealed on this disk", path: path)
        }
        guard let oldest = header.oldestAnswerableEpoch, id.epoch >= oldest else {
            throw ChangeTrackingError(.expired, "\(id) is older than the history this disk retains (\(header.geometry.historyLimit) epochs; the oldest answerable ID is \(header.oldestAnswerableEpoch.map { self.id(epoch: $0).description } ?? "none"))", path: path)
        }
        // The same epoch number sealed with another tag: a copy of this disk (same VirtualDiskId,
        // same history up to the copy) that sealed on its own since. Its content at that ID is
        // not this disk's.
        let tag = header.tag(ofEpoch: id.epoch) ?? 0
        guard id.tag == tag else {
            throw ChangeTrackingError(.otherDisk, "\(id) was sealed on another copy of this disk: this disk sealed epoch \(id.epoch) as \(self.id(epoch: id.epoch)) (copies share the VirtualDiskId and every ID sealed before they were copied, none sealed after)", path: path)
        }
        return id.epoch
    }
}
