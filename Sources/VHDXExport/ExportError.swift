/// Why an export, restore, apply or verify refused or failed, with what it was about.
public struct ExportError: Error, CustomStringConvertible, Equatable {
    public enum Reason: String, Sendable {
        /// A stream or exported image is damaged: a checksum, a digest, a missing or extra
        /// record, a record out of place. Nothing was written.
        case damaged = "damaged input"
        /// Not a stream or export of this tool at all.
        case notAnExport = "not an export"
        /// Change tracking cannot answer from the base: a full export is needed.
        case needsFull = "full export needed"
        /// The incremental's base is not what the image holds (another export, out of order).
        case wrongBase = "wrong base"
        /// The incremental is already in the image.
        case alreadyApplied = "already applied"
        /// The export is of another disk.
        case otherDisk = "another disk"
        /// An earlier apply of another incremental was interrupted: rerun it first.
        case interrupted = "interrupted apply"
        /// The image differs from what the exports describe.
        case differs = "differs"
        /// Reading an input or writing an output failed (the system's error says why).
        case io = "I/O error"
        /// Something the command cannot do as asked.
        case invalid = "invalid request"
    }

    public var reason: Reason
    public var message: String
    public var path: String?
    /// For `differs`: the first virtual offset that differs.
    public var offset: UInt64?

    public init(_ reason: Reason, _ message: String, path: String? = nil, offset: UInt64? = nil) {
        self.reason = reason
        self.message = message
        self.path = path
        self.offset = offset
    }

    public var description: String { (path.map { "\($0): " } ?? "") + "\(reason.rawValue): \(message)" }
}
