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
        var failure: Int32 = 0
        // Not zero-filled first: only what was read is kept.
        let out = [UInt8](unsafeUninitializedCapacity: count) { b, done in
            done = 0
            while done < count {
                let n = systemRead(fd, b.baseAddress! + done, count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                if n == 0 { return }
                done += n
            }
        }
        if failure != 0 { throw ExportError(.invalid, "read failed: \(String(cString: strerror(failure)))", path: name) }
        position += UInt64(out.count)
        return out
    }
}

private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.read(fd, buffer, count)
    #else
    Darwin.read(fd, buffer, count)
    #endif
}
