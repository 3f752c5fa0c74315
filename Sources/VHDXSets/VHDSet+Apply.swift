import VHDX
import VHDXChangeTracking
import VHDXFormat

extension VHDSet {
    /// ApplySnapshotVhdSet: the set's content becomes `snapshot`'s. A new child of the
    /// snapshot's file becomes the active leaf. The old leaf is kept as a snapshot of its own
    /// (kind `keptLeaf`, its change ID sealed), a branch that can be applied later; with
    /// `discard` it is deleted instead.
    ///
    /// Crash-safe as `checkpoint` is: pending first, the new file made, then one record switch
    /// (which also queues a discarded leaf for deletion).
    @discardableResult
    public func apply(_ id: GUID, discard: Bool = false) throws(VHDXError) -> SnapshotEntry? {
        let target = try snapshotOrThrow(id)
        guard target.hasFile, !target.isRetained else {
            throw VHDXError(.invalidArgument, "snapshot {\(id)} was deleted\(target.isReferenceOnly ? " (only its reference point is kept)" : ""): it has no content to apply", path: path)
        }
        if let p = problem(with: target) { throw p }
        if !discard, record.snapshots.count >= SetFileLayout.maxSnapshots {
            throw VHDXError(.tooLarge, "keeping the current leaf would need a snapshot entry and the set holds the most it can; discard the leaf, delete snapshots, or run `vhdx set optimize` to drop reference points no longer answerable", path: path, remedy: .discardLeaf)
        }
        let newPath = try newBackingPath()
        var next = record
        next.pending = PendingOperation(kind: .apply, flags: discard ? PendingOperation.Flag.discard : 0, snapshot: id, newPath: newPath)
        try commit(next)

        var kept: SnapshotEntry?
        if !discard {
            let (changeID, dwg) = try sealLeaf()
            kept = SnapshotEntry(id: .random(), parent: record.leafParent, frozenDataWriteGUID: dwg, created: VHDSet.now(),
                                 kind: .keptLeaf, flags: SnapshotEntry.Flag.valid, changeID: changeID, path: record.leafPath)
        }
        try createChild(newPath, of: absolute(target.path))

        next = record
        if let kept { next.snapshots.append(kept) } else { next.unlinkQueue.append(record.leafPath) }
        next.leafPath = newPath
        next.leafParent = id
        next.pending = nil
        try commit(next)
        try drainUnlinkQueue()
        return kept
    }
}
