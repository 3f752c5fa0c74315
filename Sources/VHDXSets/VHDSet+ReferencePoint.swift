import VHDX
import VHDXChangeTracking
import VHDXFormat

extension VHDSet {
    /// Records `id`, just sealed on the active leaf, as a reference point of the set (a data-less
    /// entry whose change ID answers, what `delete --keep-reference` leaves): what an export of
    /// the set leaves behind, so the next incremental's base is listed with the set.
    @discardableResult
    package func addReferencePoint(_ id: ChangeID) throws(VHDXError) -> SnapshotEntry {
        guard record.snapshots.count < SetFileLayout.maxSnapshots else {
            throw VHDXError(.tooLarge, "the set has \(record.snapshots.count) snapshots and reference points, the most it holds; `vhdx set optimize` drops reference points that no longer answer", path: path)
        }
        let entry = SnapshotEntry(id: .random(), parent: record.leafParent, frozenDataWriteGUID: .zero, created: VHDSet.now(),
                                  kind: .checkpoint, flags: SnapshotEntry.Flag.valid | SnapshotEntry.Flag.referenceOnly, changeID: id, path: "")
        var next = record
        next.snapshots.append(entry)
        try commit(next)
        return entry
    }
}
