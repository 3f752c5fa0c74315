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
    func append(_ bytes: [UInt8]) throws(VHDXError)
    /// Waits until everything appended is written (or throws the first failure).
    func drain() throws(VHDXError)
}

extension ByteSink {
    func append(_ bytes: [UInt8]) throws(VHDXError) {
        try typed { try bytes.withUnsafeBytes { try append($0) } }
    }
    func drain() throws(VHDXError) {}
}

/// A sink over storage (the temporary output file).
final class StorageSink: ByteSink {
    let storage: Storage
    private(set) var position: UInt64 = 0
    /// Writeback started behind the writes (a file output).
    private let pacer: WritebackPacer?
    init(_ storage: Storage) {
        self.storage = storage
        pacer = (storage as? FileStorage).map(WritebackPacer.init)
    }
    func append(_ bytes: UnsafeRawBufferPointer) throws(VHDXError) {
        try storage.write(bytes, at: position)
        position += UInt64(bytes.count)
        pacer?.wrote(UInt64(bytes.count))
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
        try FileSystem.writeStream(fd, bytes, path: name, what: "writing the stream failed")
    }
}

/// A sink whose writes run on a thread of its own (`BackgroundWriter`).
final class BackgroundSink: ByteSink {
    private let inner: ByteSink
    private let writer = BackgroundWriter()

    init(_ inner: ByteSink) { self.inner = inner }

    func append(_ bytes: UnsafeRawBufferPointer) throws(VHDXError) { try append(Array(bytes)) }

    func append(_ bytes: [UInt8]) throws(VHDXError) {
        try writer.enqueue(bytes: bytes.count) { [inner] () throws(VHDXError) in try inner.append(bytes) }
    }

    func drain() throws(VHDXError) { try writer.drain() }
}
