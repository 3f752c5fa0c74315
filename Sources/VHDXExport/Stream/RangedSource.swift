#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX

/// A stored stream read by ranges: its size and any bytes of it, without reading it front to
/// back (what `backups list` needs: a header at the front, a trailer at the end). A file here;
/// an object store answers the same with a HEAD and ranged GETs.
package protocol RangedSource {
    /// Names the stream in messages (a path, a URL).
    var name: String { get }
    /// The stream's size in bytes.
    func size() throws(ExportError) -> UInt64
    /// `count` bytes at `offset`; fewer only at the end.
    func read(at offset: UInt64, count: Int) throws(ExportError) -> [UInt8]
}

/// A regular file read by ranges (`pread`).
package final class FileRangedSource: RangedSource {
    package let name: String
    private let fd: Int32

    /// Refuses anything but a regular file (opened without blocking, so a FIFO never hangs).
    package init(path: String) throws(ExportError) {
        name = path
        let f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard f >= 0 else { throw ExportError(.io, "cannot open: \(String(cString: strerror(errno)))", path: path) }
        var st = stat()
        guard fstat(f, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            FileSystem.close(f)
            throw ExportError(.notAnExport, "not a regular file", path: path)
        }
        fd = f
    }

    deinit { FileSystem.close(fd) }

    package func size() throws(ExportError) -> UInt64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ExportError(.io, "cannot stat: \(String(cString: strerror(errno)))", path: name) }
        return UInt64(st.st_size)
    }

    package func read(at offset: UInt64, count: Int) throws(ExportError) -> [UInt8] {
        var failure: VHDXError?
        let out = [UInt8](unsafeUninitializedCapacity: count) { b, done in
            do throws(VHDXError) {
                done = try FileSystem.read(fd, into: UnsafeMutableRawBufferPointer(b), at: offset, path: name)
            } catch {
                done = 0
                failure = error
            }
        }
        if let failure { throw ExportError(.io, "reading \(count) bytes at \(offset) failed: \(failure.message)", path: name) }
        return out
    }
}
