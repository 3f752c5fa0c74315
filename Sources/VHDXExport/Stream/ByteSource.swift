#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX

/// A stream read front to back: a file, or standard input for `-`.
final class ByteSource {
    let name: String
    private let fd: Int32
    private let owned: Bool
    private(set) var position: UInt64 = 0

    init(path: String) throws(ExportError) {
        if path == "-" {
            fd = 0
            owned = false
            name = "<stdin>"
        } else {
            let f = open(path, O_RDONLY | O_CLOEXEC)
            guard f >= 0 else {
                let e = errno
                throw ExportError(.invalid, "cannot open: \(String(cString: strerror(e)))", path: path)
            }
            var st = stat()
            if fstat(f, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
                close(f)
                throw ExportError(.invalid, "is a directory, not an export", path: path)
            }
            fd = f
            owned = true
            name = path
        }
    }

    deinit { if owned { close(fd) } }

    /// Exactly `count` bytes, or fewer at the end of the stream.
    func read(_ count: Int) throws(ExportError) -> [UInt8] {
        guard count > 0 else { return [] }
        var failure: VHDXError?
        // Not zero-filled first: only what was read is kept.
        let out = [UInt8](unsafeUninitializedCapacity: count) { b, done in
            do throws(VHDXError) {
                done = try FileSystem.readStream(fd, into: UnsafeMutableRawBufferPointer(b), path: name)
            } catch {
                done = 0
                failure = error
            }
        }
        if let failure { throw ExportError(.invalid, failure.message, path: name) }
        position += UInt64(out.count)
        return out
    }
}
