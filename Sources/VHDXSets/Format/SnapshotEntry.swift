import VHDXChangeTracking
import VHDXFormat

/// One checkpoint of a set (Hyper-V's VHD snapshot information): a frozen backing file, or only
/// the change ID a deleted checkpoint left behind (a reference point).
public struct SnapshotEntry: Equatable, Sendable {
    public enum Kind: UInt32, Sendable {
        /// Taken by `checkpoint` (Hyper-V's snapshot type 1, VM).
        case checkpoint = 1
        /// The active leaf as it was when `apply` moved away from it, kept as its own branch.
        case keptLeaf = 2
    }

    public enum Flag {
        /// Hyper-V's IsValidSnapshot. `optimize` drops entries without it.
        public static let valid: UInt32 = 1
        /// No backing file: a deleted checkpoint whose change ID still answers.
        public static let referenceOnly: UInt32 = 2
        /// Deleted by the user, but its file stays because two or more branches read through
        /// it; not listed as a checkpoint, folded by `optimize` once at most one remains.
        public static let retained: UInt32 = 4
        static let known: UInt32 = 7
    }

    public var id: GUID
    /// Zero for the set's root.
    public var parent: GUID
    /// The backing file's DataWriteGuid when it was frozen; a file that no longer has it was
    /// modified outside the set. Zero for a reference point.
    public var frozenDataWriteGUID: GUID
    /// Milliseconds since 1970-01-01 UTC.
    public var created: UInt64
    public var kind: Kind
    public var flags: UInt32
    /// The change ID sealed when the checkpoint was taken.
    public var changeID: ChangeID?
    /// The backing file, relative to the set file's folder ("" for a reference point).
    public var path: String

    public init(id: GUID, parent: GUID, frozenDataWriteGUID: GUID, created: UInt64, kind: Kind, flags: UInt32,
                changeID: ChangeID?, path: String) {
        self.id = id
        self.parent = parent
        self.frozenDataWriteGUID = frozenDataWriteGUID
        self.created = created
        self.kind = kind
        self.flags = flags
        self.changeID = changeID
        self.path = path
    }

    public var isReferenceOnly: Bool { flags & Flag.referenceOnly != 0 }
    public var isRetained: Bool { flags & Flag.retained != 0 }
    public var isValid: Bool { flags & Flag.valid != 0 }
    /// Has a backing file the set reads through.
    public var hasFile: Bool { !isReferenceOnly }
}

/// Change IDs sealed in a backing file that a delete merged away, answered from now on as the
/// given (older) ID: a superset of what they covered, reported as not exact.
public struct TrackingAlias: Equatable, Sendable {
    public var trackingID: GUID
    public var target: ChangeID

    public init(trackingID: GUID, target: ChangeID) {
        self.trackingID = trackingID
        self.target = target
    }
}

/// A set operation that was started (recorded before its first file change) and not finished.
public struct PendingOperation: Equatable, Sendable {
    public enum Kind: UInt8, Sendable {
        case checkpoint = 1
        case apply = 2
        case delete = 3
        /// `relink --accept-modified` (or a move): the snapshot's new file and DataWriteGuid
        /// are recorded; the files made from it are being relinked (rolled forward).
        case relink = 4
    }

    public enum Flag {
        public static let keepReference: UInt8 = 1
        public static let discard: UInt8 = 2
        static let known: UInt8 = 3
    }

    public var kind: Kind
    public var flags: UInt8
    /// checkpoint: the new snapshot's id; apply, delete and relink: the snapshot operated on.
    public var snapshot: GUID
    /// checkpoint and apply: the new leaf being made (removed if the operation is rolled back).
    public var newPath: String

    public init(kind: Kind, flags: UInt8 = 0, snapshot: GUID, newPath: String = "") {
        self.kind = kind
        self.flags = flags
        self.snapshot = snapshot
        self.newPath = newPath
    }
}
