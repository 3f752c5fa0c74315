import VHDX
import VHDXFormat

extension VHDSet {
    /// Points the set at a backing file that was moved (like `reparent` for a chain): `target`
    /// is a snapshot or the leaf (`leaf: true`). The file must lie in the set's folder tree.
    /// A snapshot's file must still have the DataWriteGuid it was frozen with, unless
    /// `acceptModified` (the user vouches for its content; the new GUID is recorded). Files
    /// that link to it (its children) get their parent locator pointed at the new path.
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
        let image = try VHDXFile.openFile(path: newFile)
        let dwg = image.header.dataWriteGUID
        guard image.layout.virtualDiskID == record.virtualDiskID else {
            throw VHDXError(.parentMismatch, "the file belongs to the disk {\(image.layout.virtualDiskID)}, the set to {\(record.virtualDiskID)}", path: newFile)
        }
        if dwg != e.frozenDataWriteGUID && !acceptModified {
            throw VHDXError(.parentMismatch, "the file's DataWriteGuid is {\(dwg)}, snapshot {\(id)} was frozen with {\(e.frozenDataWriteGUID)}: it is not that checkpoint's file, or it was modified (taking it as it is must be asked for)", path: newFile,
                            remedy: .acceptModified(set: path, snapshot: id.description))
        }
        let i = next.index(of: id)!
        next.snapshots[i].path = rel
        next.snapshots[i].frozenDataWriteGUID = dwg
        try relinkDependants(of: id, to: newFile, dataWriteGUID: dwg)
        try commit(next)
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
