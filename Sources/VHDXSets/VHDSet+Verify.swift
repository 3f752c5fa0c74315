import VHDX
import VHDXFormat

extension VHDSet {
    /// The backing file of `entry` exists and still has the DataWriteGuid it was frozen with.
    /// Returns the problem instead of throwing, for `check` and `list`.
    public func problem(with entry: SnapshotEntry) -> VHDXError? {
        guard entry.hasFile else { return nil }
        do { _ = try contained(entry.path) } catch { return error }
        if let missing = missing(entry) { return missing }
        do { return modified(entry, dataWriteGUID: try VHDXFile.openFile(path: absolute(entry.path)).header.dataWriteGUID) } catch { return error }
    }

    /// The problem of every snapshot that has one (`problem(with:)`), for `list`. A file that
    /// cannot be read (an I/O error) is not a problem of the snapshot: that error is thrown, so
    /// a transient fault is never listed as a missing or modified checkpoint.
    public func problems() throws(VHDXError) -> [GUID: VHDXError] {
        var out: [GUID: VHDXError] = [:]
        for e in record.snapshots {
            guard let p = problem(with: e) else { continue }
            if p.code == .io { throw p }
            out[e.id] = p
        }
        return out
    }

    /// The error for a snapshot whose file is not there (nil: it is).
    func missing(_ entry: SnapshotEntry) -> VHDXError? {
        let p = absolute(entry.path)
        guard FileIdentity(path: p) == nil else { return nil }
        return VHDXError(.parentNotFound, "the backing file of snapshot {\(entry.id)} is missing (moved or deleted outside the set); put it back, or relink the set to where it is now", path: p,
                         remedy: .relink(set: path, snapshot: entry.id.description))
    }

    /// The error for a snapshot whose file has another DataWriteGuid than it was frozen with.
    func modified(_ entry: SnapshotEntry, dataWriteGUID: GUID) -> VHDXError? {
        guard !relaxedVerification(entry.id), dataWriteGUID != entry.frozenDataWriteGUID else { return nil }
        return VHDXError(.parentMismatch, "the backing file of snapshot {\(entry.id)} was modified outside the set (its DataWriteGuid is {\(dataWriteGUID)}, the set recorded {\(entry.frozenDataWriteGUID)}): the checkpoint's content is no longer what it was; a relink that accepts the modification takes it as it is now", path: absolute(entry.path),
                         remedy: .acceptModified(set: path, snapshot: entry.id.description))
    }

    /// While a delete is pending, the merge it runs changes the DataWriteGuid of the deleted
    /// snapshot's file and of the one merged into it; the chain links still guarantee content.
    /// Likewise while a relink is pending for the files made from the relinked one: each gets
    /// a new DataWriteGuid as it is relinked, recorded when the relink completes.
    func relaxedVerification(_ id: GUID) -> Bool {
        guard let p = record.pending else { return false }
        switch p.kind {
        case .delete: return p.snapshot == id || record.snapshot(id)?.parent == p.snapshot
        case .relink: return record.descends(id, from: p.snapshot)
        case .checkpoint, .apply: return false
        }
    }

    /// Mid-relink a file may not link to its parent's DataWriteGuid yet; the chain is the set's
    /// (checked file by file below) and its content is already the relinked one.
    var chainOptions: ParentOptions {
        record.pending?.kind == .relink ? ParentOptions(ignoreIDMismatch: true) : .default
    }

    /// The file being merged by a pending delete (its children may be relinked already).
    var pendingDeleteDependant: String? {
        guard let p = record.pending, p.kind == .delete, let s = record.snapshot(p.snapshot), s.hasFile else { return nil }
        let paths = record.dependantPaths(of: s.id)
        return paths.count == 1 ? paths[0] : nil
    }

    /// Opens the active leaf's chain and checks it is the chain the set describes: every layer
    /// the file the set names (same device and inode), every frozen file unmodified. The leaf's
    /// own chain links (parent_linkage) are checked by the engine as it opens them.
    public func openLeaf(writable: Bool = false) throws(VHDXError) -> VHDXFile {
        if writable && !self.writable {
            throw VHDXError(.readOnly, "the set was opened read-only; writing to its leaf needs a writable open of the set", path: path)
        }
        let ancestry = record.leafAncestry().compactMap { record.snapshot($0) }
        _ = try contained(record.leafPath)
        for e in ancestry {
            _ = try contained(e.path)
            if let p = missing(e) { throw p }
        }
        guard FileIdentity(path: leafPath) != nil else {
            throw VHDXError(.parentNotFound, "the active leaf is missing (moved or deleted outside the set); put it back, or relink the set to where it is now", path: leafPath,
                             remedy: .relink(set: path, snapshot: nil))
        }
        // Opened once. A frozen file modified outside the set breaks its child's linkage, so
        // the engine refuses the chain; the set's own diagnosis names the file and the way out.
        let top: VHDXFile
        do { top = try VHDXFile.openChain(path: leafPath, writable: writable, parents: chainOptions) } catch {
            if let p = ancestry.lazy.compactMap({ self.problem(with: $0) }).first { throw p }
            throw error
        }
        let chain = top.chain
        let expected = [leafPath] + ancestry.map { absolute($0.path) }
        func matches(_ paths: [String]) -> Bool {
            chain.count == paths.count && zip(chain, paths).allSatisfy { FileIdentity(path: $0.path) == FileIdentity(path: $1) }
        }
        // Mid-delete, the merged dependant's children may already link past it.
        let skipping = pendingDeleteDependant.map { d in expected.filter { $0 != absolute(d) } }
        guard matches(expected) || skipping.map(matches) == true else {
            throw VHDXError(.parentMismatch, "the active leaf's chain (\(chain.map(\.path).joined(separator: " → "))) is not the set's (\(expected.joined(separator: " → "))): a file was relinked outside the set", path: path)
        }
        let layers = Dictionary(chain.map { (FileIdentity(path: $0.path), $0) }, uniquingKeysWith: { a, _ in a })
        for e in ancestry {
            if let layer = layers[FileIdentity(path: absolute(e.path))], let p = modified(e, dataWriteGUID: layer.header.dataWriteGUID) { throw p }
        }
        guard top.layout.virtualDiskID == record.virtualDiskID else {
            throw VHDXError(.parentMismatch, "the active leaf belongs to the disk {\(top.layout.virtualDiskID)}, the set to {\(record.virtualDiskID)}", path: leafPath)
        }
        return top
    }
}
