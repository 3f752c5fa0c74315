#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX

/// Where a stream goes: a file being built (then renamed into place) or a pipe. Writes are
/// sequential.
protocol ByteSink: AnyObject {
    func append(_ bytes: UnsafeRawBufferPointer) throws(VHDXError)
}

extension ByteSink {
    func append(_ bytes: [UInt8]) throws(VHDXError) {
        try typed { try bytes.withUnsafeBytes { try append($0) } }
    }
}

/// A sink over storage (the temporary output file).
final class StorageSink: ByteSink {
    let storage: Storage
    private(set) var position: UInt64 = 0
    init(_ storage: Storage) { self.storage = storage }
    func append(_ bytes: UnsafeRawBufferPointer) throws(VHDXError) {
        try storage.write(bytes, at: position)
        position += UInt64(bytes.count)
    }
}

/// A sink over a file descriptor (standard output, a pipe).
final class DescriptorSink: ByteSink {
    let fd: Int32
    let name: String
    init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
    }
    func append(_ bytes: UnsafeRawBufferPointer) throws(VHDXError) {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                throw VHDXError(.io, "writing the stream failed: \(String(cString: strerror(e)))", path: name, cause: Errno(e))
            }
            done += n
        }
    }
}
