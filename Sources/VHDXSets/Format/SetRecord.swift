import VHDXFormat

/// Everything a set file says (one copy's content): the set, its active leaf, its checkpoints,
/// and what an interrupted operation left to do.
public struct SetRecord: Equatable, Sendable {
    public var setID: GUID
    public var virtualDiskID: GUID
    /// Milliseconds since 1970-01-01 UTC.
    public var created: UInt64
    /// Written by SetFile: the copy with the higher number is the current one.
    public var sequence: UInt64 = 0
    /// Where new backing files go, relative to the set file's folder ("" is that folder).
    public var defaultFolder: String
    /// The active leaf: the file reads and writes go to, relative to the set file's folder.
    public var leafPath: String
    /// The snapshot whose file is the leaf's parent; zero when the leaf is the root.
    public var leafParent: GUID
    public var snapshots: [SnapshotEntry] = []
    public var aliases: [TrackingAlias] = []
    public var pending: PendingOperation?
    /// Files no longer referenced, deleted by the next writing open (a crash between the
    /// record naming them unreferenced and their unlink leaves them here, not forgotten).
    public var unlinkQueue: [String] = []

    public init(setID: GUID, virtualDiskID: GUID, created: UInt64, defaultFolder: String, leafPath: String, leafParent: GUID = .zero) {
        self.setID = setID
        self.virtualDiskID = virtualDiskID
        self.created = created
        self.defaultFolder = defaultFolder
        self.leafPath = leafPath
        self.leafParent = leafParent
    }

    public func snapshot(_ id: GUID) -> SnapshotEntry? { snapshots.first { $0.id == id } }
    public func index(of id: GUID) -> Int? { snapshots.firstIndex { $0.id == id } }

    /// Entries with a file whose parent is `id`, and whether the leaf's parent is `id`.
    public func dependants(of id: GUID) -> (snapshots: [SnapshotEntry], leaf: Bool) {
        (snapshots.filter { $0.hasFile && $0.parent == id }, leafParent == id)
    }

    /// The files made from snapshot `id`'s file (its dependants' paths: what links to it).
    public func dependantPaths(of id: GUID) -> [String] {
        let d = dependants(of: id)
        return d.snapshots.map(\.path) + (d.leaf ? [leafPath] : [])
    }

    /// Snapshot ids from the leaf's parent down to the root.
    public func leafAncestry() -> [GUID] {
        var out: [GUID] = []
        var id = leafParent
        while !id.isZero, let e = snapshot(id), out.count <= snapshots.count {
            out.append(id)
            id = e.parent
        }
        return out
    }

    /// Every file path the record references (the leaf and the snapshots' files).
    public var referencedPaths: [String] {
        [leafPath] + snapshots.filter(\.hasFile).map(\.path)
    }
}
