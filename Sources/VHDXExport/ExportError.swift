import VHDX
import VHDXChangeTracking

/// Why an export, restore, apply or verify refused or failed, with what it was about. A
/// failure of the engine (`.engine`) or a question change tracking cannot answer (`.tracking`)
/// carries that error unchanged, and reads exactly as it does.
///
/// Equality: two are equal when their `reason`s are equal — and, for `.engine` and
/// `.tracking`, the carried error's code or reason; message, path and offset are ignored.
/// `VHDXError` (by code) and `ChangeTrackingError` (by reason) follow the same rule.
public struct ExportError: CarriesEngineError, CustomStringConvertible, Equatable {
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
        /// The engine failed or refused (a file in use, a corrupt image, an I/O error of the
        /// disk): `engineError` says how.
        case engine = "engine error"
        /// Change tracking cannot answer (not enabled on the source, …): `trackingError` says why.
        case tracking = "change tracking"
    }

    public var reason: Reason
    public var message: String
    public var path: String?
    /// For `differs`: the first virtual offset that differs.
    public var offset: UInt64?
    /// For `.engine`: the engine's error as it was thrown.
    public var engineError: VHDXError?
    /// For `.tracking`: change tracking's error as it was thrown.
    public var trackingError: ChangeTrackingError?

    public init(_ reason: Reason, _ message: String, path: String? = nil, offset: UInt64? = nil) {
        self.reason = reason
        self.message = message
        self.path = path
        self.offset = offset
    }

    /// An engine error, carried unchanged.
    public init(_ error: VHDXError) {
        self.init(.engine, error.message, path: error.path)
        engineError = error
    }

    /// A change-tracking error, carried unchanged (one that carries an engine error becomes `.engine`).
    public init(_ error: ChangeTrackingError) {
        if let e = error.engineError {
            self.init(e)
            return
        }
        self.init(.tracking, error.message, path: error.path)
        trackingError = error
    }

    /// The carried error's own description for `.engine` and `.tracking`.
    public var description: String {
        if let engineError { return engineError.description }
        if let trackingError { return trackingError.description }
        return (path.map { "\($0): " } ?? "") + "\(reason.rawValue): \(message)"
    }

    /// Equal when the reasons are, and the carried error's code or reason (see the type's documentation).
    public static func == (a: ExportError, b: ExportError) -> Bool {
        a.reason == b.reason && a.engineError?.code == b.engineError?.code && a.trackingError?.reason == b.trackingError?.reason
    }

    /// Runs the body of a public entry point of this module, which meets the engine's and
    /// change tracking's errors as well as its own: the one place they become `ExportError`s.
    static func boundary<T>(_ body: () throws -> T) throws(ExportError) -> T {
        do { return try body() } catch let e as ExportError {
            throw e
        } catch let e as ChangeTrackingError {
            throw ExportError(e)
        } catch let e as VHDXError {
            throw ExportError(e)
        } catch {
            throw ExportError(VHDXError(.io, "\(error)", cause: error))
        }
    }
}
