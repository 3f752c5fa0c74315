import VHDX

/// Why a change-tracking question cannot be answered. Each case is distinct so a backup tool
/// can tell "do a full backup" situations apart; the CLI maps all of them to exit code 4.
public struct ChangeTrackingError: Error, CustomStringConvertible, Equatable {
    public enum Reason: String, Sendable {
        /// The disk has no tracking region.
        case notEnabled = "tracking not enabled"
        /// Not a change ID of ours, one from a tracking that was disabled since, or not sealed yet.
        case unknownID = "unknown change ID"
        /// Older than the history the disk retains.
        case expired = "change ID expired"
        /// Sealed on another disk (a different VirtualDiskId).
        case otherDisk = "change ID of another disk"
        /// Tracking was reset since the ID was sealed (outside writer, damaged region, …).
        case reset = "tracking reset"
    }

    public var reason: Reason
    public var message: String
    public var path: String?

    public init(_ reason: Reason, _ message: String, path: String? = nil) {
        self.reason = reason
        self.message = message
        self.path = path
    }

    public var description: String { (path.map { "\($0): " } ?? "") + "\(reason.rawValue): \(message)" }

    public static func == (a: ChangeTrackingError, b: ChangeTrackingError) -> Bool { a.reason == b.reason }
}
