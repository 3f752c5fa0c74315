import VHDX
import VHDXChangeTracking
import VHDXExport

/// The library's typed APIs carry an engine or tracking error inside their own type
/// (`ChangeTrackingError.engine`, `ExportError.engine` and `.tracking`). The tool reports and
/// exits on the error as first thrown, so its message, hint and exit code do not depend on
/// which API carried it.
enum CarriedError {
    /// The error `error` carries, or `error` itself.
    static func original(_ error: any Error) -> any Error {
        if let v = VHDXError.carried(by: error) { return v }
        if let t = (error as? ExportError)?.trackingError { return t }
        return error
    }
}
