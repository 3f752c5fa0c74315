import VHDX
import VHDXChangeTracking
import VHDXFormat

extension VHDSet {
    /// TakeSnapshotVhdSet: freezes the active leaf as a new snapshot (its change ID sealed, its
    /// DataWriteGuid recorded) and makes a new differencing child of it the active leaf.
    ///
    /// Order: (1) the set records the operation as pending, with the new file's name; (2) the
    /// leaf's change ID is sealed; (3) the child is created (atomically) and tracks as its
    /// parent does; (4) the set names the snapshot and the new leaf. A crash before (4) leaves
    /// the set as it was; the next writable open deletes the half-made child (rollback), and
    /// running `checkpoint` again takes it. Reference points and aliases whose change IDs can
    /// never be answered again are dropped in the same update as the pending mark.
    @discardableResult
    public func checkpoint() throws(VHDXError) -> SnapshotEntry {
        // Reference points and aliases that can never answer again go first (every export
        // leaves a reference point; the leaf's history expires them).
        var next = try recordWithRoomForAnEntry()
        let newPath = try newBackingPath()
        next.pending = PendingOperation(kind: .checkpoint, snapshot: .random(), newPath: newPath)
        try commit(next)

        let (changeID, dwg) = try sealLeaf()
        try createChild(newPath, of: leafPath)

        let entry = SnapshotEntry(id: next.pending!.snapshot, parent: record.leafParent, frozenDataWriteGUID: dwg, created: VHDSet.now(),
                                  kind: .checkpoint, flags: SnapshotEntry.Flag.valid, changeID: changeID, path: record.leafPath)
        next = record
        next.snapshots.append(entry)
        next.leafPath = newPath
        next.leafParent = entry.id
        next.pending = nil
        try commit(next)
        return entry
    }

    /// Seals the leaf's change ID (nil when its tracking was turned off) and gives its
    /// DataWriteGuid, which stays as long as the file is frozen.
    func sealLeaf() throws(VHDXError) -> (ChangeID?, GUID) {
        let top = try openLeaf(writable: true)
        var id: ChangeID?
        if let tracker = try ChangeTracker.attach(to: top) { id = try tracker.seal() }
        try top.close()
        return (id, top.header.dataWriteGUID)
    }

    /// A new differencing child at the set path `relative` over `parent`, tracking as its
    /// parent does.
    func createChild(_ relative: String, of parent: String) throws(VHDXError) {
        let child = try contained(relative)
        try VHDXCreator.createChild(path: child, parentPath: parent)
        let image = try VHDXFile.openFile(path: child, writable: true)
        try ChangeTracking.followParent(image, parent: try VHDXFile.openFile(path: parent))
        try image.close()
    }
}
