#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
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

/// Writes on a thread of its own, so the caller's thread goes back to reading the disk while
/// the output is written: at most `limit` bytes wait in between. A failure is thrown by the
/// next append or by `drain`.
final class BackgroundSink: ByteSink, @unchecked Sendable {
    private let inner: ByteSink
    private let queue = DispatchQueue(label: "swift-vhdx.export.writer")
    private let room: DispatchSemaphore
    private let unit: Int
    private let lock = NSLockLite()
    private var failure: VHDXError?

    /// `limit` bytes in flight, counted in `unit`-byte tokens.
    init(_ inner: ByteSink, limit: Int = 32 << 20, unit: Int = 1 << 20) {
        self.inner = inner
        self.unit = unit
        room = DispatchSemaphore(value: max(1, limit / unit))
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws(VHDXError) {
        try append(Array(bytes))
    }

    func append(_ bytes: [UInt8]) throws(VHDXError) {
        if let f = lock.withLock({ failure }) { throw f }
        let tokens = max(1, (bytes.count + unit - 1) / unit)
        for _ in 0..<tokens { room.wait() }
        queue.async { [self] in
            defer { for _ in 0..<tokens { room.signal() } }
            guard lock.withLock({ failure }) == nil else { return }
            do throws(VHDXError) { try inner.append(bytes) } catch { lock.withLock { failure = error } }
        }
    }

    func drain() throws(VHDXError) {
        queue.sync {}
        if let f = lock.withLock({ failure }) { throw f }
    }
}

/// A mutex for the few fields a background writer shares.
final class NSLockLite: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func withLock<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }
}
