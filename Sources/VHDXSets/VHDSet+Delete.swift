import VHDX
import VHDXChangeTracking
import VHDXFormat

/// What a delete did.
public struct SetDeleteResult: Sendable {
    public enum Outcome: Sendable {
        /// The snapshot's file was merged with its one dependant's and the dependant's file deleted.
        case merged(dependant: String, bytes: UInt64)
        /// Nothing read through the snapshot's file: it was deleted.
        case removed
        /// Two or more branches read through it: the file stays, the snapshot is gone from the list.
        case retained(dependants: Int)
        /// A reference point: only the entry changed.
        case referenceOnly
    }
    public var outcome: Outcome
    public var keptReference: Bool
}

extension VHDSet {
    /// Remove-VHDSnapshot [-PersistReferencePoint]. The snapshot's data goes where it must so
    /// every other snapshot and the active leaf read as before:
    /// - one dependant (a snapshot or the leaf whose parent it is): the dependant's file is
    ///   merged into the snapshot's (`Merger`, tracked by the snapshot file's tracking, so its
    ///   change ID keeps answering and now covers what the dependant held), the dependant's own
    ///   children are relinked to it, and the snapshot's file takes the dependant's place. The
    ///   smaller file is the one copied in the usual backup flow (the checkpoint's child). Change
    ///   IDs sealed in the dependant's file are answered from then on as the deleted snapshot's
    ///   ID (an alias: larger, never smaller, and reported as not exact);
    /// - none: its file is deleted;
    /// - several (branches made by `apply`): its file stays (`retained`), the snapshot leaves
    ///   the list, and `optimize` folds it once at most one branch is left.
    /// With `keepReference` a data-less entry keeps its change ID (a reference point).
    ///
    /// The operation is recorded as pending before any file changes and is completed (rolled
    /// forward) by the next writable open if interrupted: every step can run again.
    @discardableResult
    public func delete(_ id: GUID, keepReference: Bool = false) throws(VHDXError) -> SetDeleteResult {
        _ = try snapshotOrThrow(id)
        var next = record
        next.pending = PendingOperation(kind: .delete, flags: keepReference ? PendingOperation.Flag.keepReference : 0, snapshot: id)
        try commit(next)
        return try finishDelete()
    }

    /// Runs the pending delete from wherever it stopped.
    func finishDelete() throws(VHDXError) -> SetDeleteResult {
        guard let p = record.pending, p.kind == .delete else {
            throw VHDXError(.invalidArgument, "no delete is pending", path: path)
        }
        let keep = p.flags & PendingOperation.Flag.keepReference != 0
        var next = record
        next.pending = nil
        guard let i = record.index(of: p.snapshot) else {
            try commit(next)
            return SetDeleteResult(outcome: .removed, keptReference: false)
        }
        let s = record.snapshots[i]
        if s.isReferenceOnly {
            if !keep { next.snapshots.remove(at: i) }
            try commit(next)
            return SetDeleteResult(outcome: .referenceOnly, keptReference: keep)
        }
        let deps = record.dependants(of: s.id)
        let count = dependantCount(s.id)
        let outcome: SetDeleteResult.Outcome
        switch count {
        case 0:
            next.unlinkQueue.append(s.path)
            next.snapshots[i] = referencePoint(s)
            if !keep { next.snapshots.remove(at: i) }
            outcome = .removed
        case 1:
            let dependantPath = deps.leaf ? record.leafPath : deps.snapshots[0].path
            let (bytes, dwg, merged) = try mergeDependant(dependantPath, into: s, childrenOf: deps.leaf ? nil : deps.snapshots[0].id)
            if deps.leaf {
                next.leafPath = s.path
                next.leafParent = s.parent
            } else if let j = next.index(of: deps.snapshots[0].id) {
                next.snapshots[j].path = s.path
                next.snapshots[j].frozenDataWriteGUID = dwg
                next.snapshots[j].parent = s.parent
            }
            if let t = merged, let target = s.changeID {
                next.aliases = next.aliases.map { $0.target.trackingID == t ? TrackingAlias(trackingID: $0.trackingID, target: target) : $0 }
                next.aliases.removeAll { $0.trackingID == t }
                if next.aliases.count < SetFileLayout.maxAliases { next.aliases.append(TrackingAlias(trackingID: t, target: target)) }
            }
            next.unlinkQueue.append(dependantPath)
            next.snapshots[i] = referencePoint(s)
            if !keep { next.snapshots.remove(at: i) }
            outcome = .merged(dependant: dependantPath, bytes: bytes)
        default:
            next.snapshots[i].flags |= SnapshotEntry.Flag.retained
            if !keep { next.snapshots[i].changeID = nil }
            outcome = .retained(dependants: count)
        }
        try commit(next)
        try drainUnlinkQueue()
        return SetDeleteResult(outcome: outcome, keptReference: keep)
    }

    /// Points the files made from snapshot `id`'s file at `parent` (same content, so their own
    /// DataWriteGuid and tracking stay): the parent locator rewritten through the log.
    func relinkDependants(of id: GUID, to parent: String, dataWriteGUID: GUID) throws(VHDXError) {
        for c in record.dependantPaths(of: id) {
            let childPath = try contained(c)
            let child = try VHDXFile.openFile(path: childPath, writable: true)
            try child.setParentLocator(try VHDXCreator.parentLocator(childPath: childPath, parentPath: parent, dataWriteGUID: dataWriteGUID))
            try child.close()
        }
    }

    func referencePoint(_ s: SnapshotEntry) -> SnapshotEntry {
        var r = s
        r.path = ""
        r.frozenDataWriteGUID = .zero
        r.flags = (s.flags & ~SnapshotEntry.Flag.retained) | SnapshotEntry.Flag.referenceOnly
        return r
    }

    /// Merges the file at set path `dependant` into `s`'s file and relinks the dependant's own
    /// children (snapshots whose parent is `childrenOf`, and the leaf) to `s`'s file, whose
    /// content is now the dependant's. Returns the bytes merged, `s`'s file's new
    /// DataWriteGuid and the dependant's tracking ID (for the alias).
    func mergeDependant(_ dependant: String, into s: SnapshotEntry, childrenOf: GUID?) throws(VHDXError) -> (UInt64, GUID, GUID?) {
        let upper = try contained(dependant), lower = try contained(s.path)
        let trackingID = try ChangeTracker.view(of: VHDXFile.openFile(path: upper), observe: false)?.header.trackingID
        let result = try Merger.merge(childPath: upper, intoPath: lower, keepMergedFiles: true,
                                      prepareAncestor: { (a) throws(VHDXError) in _ = try ChangeTracker.attach(to: a) })
        if let childrenOf { try relinkDependants(of: childrenOf, to: lower, dataWriteGUID: result.dataWriteGUID) }
        return (result.bytesCopied + result.bytesZeroed, result.dataWriteGUID, trackingID)
    }
}
