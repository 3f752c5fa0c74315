import VHDX
import VHDXChangeTracking
import VHDXFormat

extension VHDSet {
    /// Points the set at a backing file that was moved (like `reparent` for a chain): `target`
    /// is a snapshot or the leaf (`leaf: true`). The file must lie in the set's folder tree.
    /// A snapshot's file must still have the DataWriteGuid it was frozen with, unless
    /// `acceptModified` (the user vouches for its content; the new GUID is recorded). Files
    /// that link to it (its children) get their parent locator pointed at the new path.
    ///
    /// A modified file changes what every file made from it reads, which their trackers never
    /// saw: each of them (its children, theirs, down to the leaf, on every branch) is relinked
    /// to its parent as a whole-disk change through its own tracking (`reparent` with the
    /// mismatch accepted: DataWriteGuid renewed, the whole disk marked in the open epoch), so
    /// every change ID sealed on them before answers the whole disk from now on; IDs sealed on
    /// the modified file itself answer as its own tracking does (reset, for an outside writer).
    /// Recorded as pending first and completed by the next writable open if interrupted.
    public func relink(snapshot id: GUID?, to newFile: String, acceptModified: Bool = false) throws(VHDXError) {
        guard let rel = VHDSet.relativePath(of: newFile, inFolderOf: path) else {
            throw VHDXError(.invalidArgument, "a set's backing files live in the set file's folder or below it", path: newFile)
        }
        var next = record
        guard let id else {
            next.leafPath = rel
            try commitChecked(next)
            return
        }
        let e = try snapshotOrThrow(id)
        guard e.hasFile else { throw VHDXError(.invalidArgument, "snapshot {\(id)} has no file (a reference point)", path: path) }
        let dwg: GUID
        do {
            // Scoped: the handle (and its lock) goes before the relink opens files writable.
            let image = try VHDXFile.openFile(path: try contained(rel))
            dwg = image.header.dataWriteGUID
            guard image.layout.virtualDiskID == record.virtualDiskID else {
                throw VHDXError(.parentMismatch, "the file belongs to the disk {\(image.layout.virtualDiskID)}, the set to {\(record.virtualDiskID)}", path: newFile)
            }
        }
        if dwg != e.frozenDataWriteGUID && !acceptModified {
            throw VHDXError(.parentMismatch, "the file's DataWriteGuid is {\(dwg)}, snapshot {\(id)} was frozen with {\(e.frozenDataWriteGUID)}: it is not that checkpoint's file, or it was modified (taking it as it is must be asked for)", path: newFile,
                            remedy: .acceptModified(set: path, snapshot: id.description))
        }
        let i = next.index(of: id)!
        next.snapshots[i].path = rel
        next.snapshots[i].frozenDataWriteGUID = dwg
        next.pending = PendingOperation(kind: .relink, snapshot: id)
        try commit(next)
        try finishRelink()
    }

    /// Runs the pending relink from wherever it stopped: every file made from the relinked
    /// snapshot's, parents before children, is pointed at its parent; one whose parent no
    /// longer has the DataWriteGuid it was made against gets a whole-disk change through its
    /// tracking. A file already linked to its parent's current DataWriteGuid was done (or
    /// needed nothing) and is left alone, except the relinked file's own children, whose
    /// locator must name the new path. Then one update records the new DataWriteGuids of the
    /// frozen files and clears the pending mark.
    func finishRelink() throws(VHDXError) {
        guard let p = record.pending, p.kind == .relink else {
            throw VHDXError(.invalidArgument, "no relink is pending", path: path)
        }
        var next = record
        next.pending = nil
        for (child, parent) in record.descendantsTopDown(of: p.snapshot) {
            guard let parentEntry = record.snapshot(parent) else { continue }
            let childPath = child.flatMap { record.snapshot($0)?.path } ?? record.leafPath
            let childFile = try contained(childPath), parentFile = try contained(parentEntry.path)
            try relinkLayer(childFile, to: parentFile, alwaysRewrite: parent == p.snapshot)
            if let child, let j = next.index(of: child) {
                next.snapshots[j].frozenDataWriteGUID = try VHDXFile.openFile(path: childFile).header.dataWriteGUID
            }
        }
        try commit(next)
    }

    /// Points the differencing file `child` at `parent` through a tracked open: a parent that is
    /// not the one it was made against is accepted as a whole-disk change (the engine renews
    /// DataWriteGuid and tells the tracker before the locator changes).
    private func relinkLayer(_ child: String, to parent: String, alwaysRewrite: Bool) throws(VHDXError) {
        if !alwaysRewrite {
            let linkage = try VHDXFile.openFile(path: child).layout.parentLocator
            let parentGUID = try VHDXFile.openFile(path: parent).header.dataWriteGUID
            if linkage?.parentLinkage == parentGUID || (linkage?.parentLinkage2 == parentGUID && !parentGUID.isZero) { return }
        }
        let image = try VHDXFile.openFile(path: child, writable: true)
        try ChangeTracker.attach(to: image)
        try image.reparent(to: parent, options: ParentOptions(ignoreIDMismatch: true))
        try image.close()
    }

    /// Records `next` and opens the leaf's chain under it; if that fails, the old record goes
    /// back (the new leaf must be a child of the set's chain).
    private func commitChecked(_ next: SetRecord) throws(VHDXError) {
        let saved = file.record
        try commit(next)
        do { _ = try openLeaf() } catch {
            try commit(saved)
            throw error
        }
    }
}

extension SetRecord {
    /// Every file made from snapshot `id`'s, parents first: (the snapshot, or nil for the
    /// leaf; its parent snapshot).
    func descendantsTopDown(of id: GUID) -> [(child: GUID?, parent: GUID)] {
        var out: [(GUID?, GUID)] = []
        var queue = [id]
        var seen: Set<GUID> = [id]
        while !queue.isEmpty {
            let p = queue.removeFirst()
            for s in snapshots where s.hasFile && s.parent == p && seen.insert(s.id).inserted {
                out.append((s.id, p))
                queue.append(s.id)
            }
            if leafParent == p { out.append((nil, p)) }
        }
        return out
    }

    /// Whether snapshot `id` is `ancestor` or made (directly or not) from its file.
    func descends(_ id: GUID, from ancestor: GUID) -> Bool {
        var cur = id
        for _ in 0...snapshots.count {
            if cur == ancestor { return true }
            guard !cur.isZero, let e = snapshot(cur) else { return false }
            cur = e.parent
        }
        return false
    }
}
