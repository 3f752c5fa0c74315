import VHDX
import VHDXChangeTracking
import VHDXFormat

extension VHDSet {
    /// Records `id`, just sealed on the active leaf, as a reference point of the set (a data-less
    /// entry whose change ID answers, what `delete --keep-reference` leaves): what an export of
    /// the set leaves behind, so the next incremental's base is listed with the set.
    @discardableResult
    /// Reference points and aliases that can never answer again are dropped in the same update
    /// (the leaf's history expires them), so nightly exports never fill the set.
    package func addReferencePoint(_ id: ChangeID) throws(VHDXError) -> SnapshotEntry {
        var next = try recordWithRoomForAnEntry()
        let entry = SnapshotEntry(id: .random(), parent: record.leafParent, frozenDataWriteGUID: .zero, created: VHDSet.now(),
                                  kind: .checkpoint, flags: SnapshotEntry.Flag.valid | SnapshotEntry.Flag.referenceOnly, changeID: id, path: "")
        next.snapshots.append(entry)
        try commit(next)
        return entry
    }

    /// The record with the reference points and aliases that can never answer again pruned,
    /// refused when it still has no room for one more entry (checkpoint, reference point).
    func recordWithRoomForAnEntry() throws(VHDXError) -> SetRecord {
        var next = record
        _ = try prune(&next, keepOtherBranches: true)
        guard next.snapshots.count < SetFileLayout.maxSnapshots else {
            throw VHDXError(.tooLarge, "the set has \(next.snapshots.count) snapshot entries, the most it holds; delete some (`vhdx set delete`), or run `vhdx set optimize` to drop reference points no longer answerable on this branch", path: path)
        }
        return next
    }
}
