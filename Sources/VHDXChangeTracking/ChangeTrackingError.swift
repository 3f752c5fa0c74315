import VHDX

/// Why a change-tracking question cannot be answered. Each case is distinct so a backup tool
/// can tell "do a full backup" situations apart; the CLI maps all of them to exit code 4.
/// A failure of the disk itself (it cannot be read, it is read-only …) is `.engine`, carrying
/// the engine's error unchanged: it says nothing about tracking (the CLI exits as for any
/// engine error).
///
/// Equality: two are equal when their `reason`s are equal — and, for `.engine`, the engine
/// errors' codes; message and path are ignored. `VHDXError` (by code) and `ExportError` (by
/// reason) follow the same rule.
public struct ChangeTrackingError: CarriesEngineError, CustomStringConvertible, Equatable {
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
        /// The disk failed or refused (an I/O error, …): `engineError` says how. Not a reason to
        /// take a full backup.
        case engine = "engine error"
    }

    public var reason: Reason
    public var message: String
    public var path: String?
    /// For `.engine`: the engine's error as it was thrown (code, message, path, cause, remedy).
    public var engineError: VHDXError?

    public init(_ reason: Reason, _ message: String, path: String? = nil) {
        self.reason = reason
        self.message = message
        self.path = path
    }

    /// An engine error met while answering, carried unchanged: the one place this module's
    /// typed API turns the engine's errors into its own (see `engine(_:)`).
    public init(_ error: VHDXError) {
        self.init(.engine, error.message, path: error.path)
        engineError = error
    }

    /// The engine error's own description for `.engine`, so it reads exactly as the engine's.
    public var description: String {
        if let engineError { return engineError.description }
        return (path.map { "\($0): " } ?? "") + "\(reason.rawValue): \(message)"
    }

    /// Equal when the reasons are, and for `.engine` the engine codes (see the type's documentation).
    public static func == (a: ChangeTrackingError, b: ChangeTrackingError) -> Bool {
        a.reason == b.reason && a.engineError?.code == b.engineError?.code
    }
}

/// Runs engine work inside this module's typed API, carrying an engine error as `.engine`.
@inline(__always)
func engine<T>(_ body: () throws(VHDXError) -> T) throws(ChangeTrackingError) -> T {
    do { return try body() } catch { throw ChangeTrackingError(error) }
}
