#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The unix socket a server listens on, as a file: checked before binding (a stale socket
/// left by a killed server is removed; a live one or any other kind of file is refused, never
/// replaced), made owner-only once bound, removed at stop only if it is still ours.
final class UnixSocketFile: Sendable {
    let path: String
    private let identity = Mutex<(dev: UInt64, ino: UInt64)?>(nil)

    private init(path: String) { self.path = path }

    static func prepare(_ path: String) throws(ServeError) -> UnixSocketFile {
        guard !path.isEmpty else { throw ServeError(.invalid, "the socket path is empty") }
        // sockaddr_un's path holds 107 bytes and a NUL.
        guard path.utf8.count < 108 else {
            throw ServeError(.invalid, "\(path): a unix socket path is at most 107 bytes (this one is \(path.utf8.count)); use a shorter one")
        }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else {
                throw ServeError(.invalid, "\(path) exists and is not a socket; not replaced")
            }
            if isLive(path) {
                throw ServeError(.invalid, "\(path): a server is already listening on this socket")
            }
            guard unlink(path) == 0 || errno == ENOENT else {
                throw ServeError(.io, "\(path): cannot remove the stale socket: \(String(cString: strerror(errno)))")
            }
        }
        return UnixSocketFile(path: path)
    }

    /// Called once bound: owner-only access, and the file remembered so `remove` never deletes
    /// another's.
    func adopt() throws(ServeError) {
        guard chmod(path, 0o600) == 0 else {
            throw ServeError(.io, "\(path): cannot restrict the socket to its owner: \(String(cString: strerror(errno)))")
        }
        var st = stat()
        if lstat(path, &st) == 0 { identity.withLock { $0 = (UInt64(st.st_dev), UInt64(st.st_ino)) } }
    }

    func remove() {
        guard let identity = identity.withLock({ $0 }) else { return }
        var st = stat()
        guard lstat(path, &st) == 0, UInt64(st.st_dev) == identity.dev, UInt64(st.st_ino) == identity.ino else { return }
        unlink(path)
    }

    /// Whether something accepts connections on the socket at `path`.
    private static func isLive(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return result == 0
    }
}
