#if canImport(Glibc)
import Glibc
let ENOSPC_CODE = ENOSPC
#elseif canImport(Darwin)
import Darwin
let ENOSPC_CODE = ENOSPC
#endif

import VHDX

extension ServeError {
    /// The NBD error for an engine failure: a full file system is ENOSPC (the client may free
    /// space and retry), a change to a read-only handle EPERM, a range the engine refuses
    /// EINVAL, anything else EIO. The message keeps the engine's (what, where, why).
    static func engine(_ e: VHDXError, _ what: String) -> ServeError {
        let text = "\(what): \(e)"
        if e.systemErrno == ENOSPC_CODE { return ServeError(.noSpace, text) }
        switch e.code {
        case .readOnly: return ServeError(.notPermitted, text)
        case .outOfBounds, .invalidArgument: return ServeError(.invalid, text)
        case .tooLarge: return ServeError(.overflow, text)
        default:
            if (e.cause as? VHDXError)?.systemErrno == ENOSPC_CODE { return ServeError(.noSpace, text) }
            return ServeError(.io, text)
        }
    }
}

