import Dispatch
import VHDX

/// Where a restore writes: a VHDX being built, or a raw image.
protocol RestoreSink: AnyObject {
    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError)
    func zero(at offset: UInt64, length: UInt64) throws(VHDXError)
}

extension BulkImageWriter: RestoreSink {}

/// A raw image on a new (sparse) file. The full export lands first, on zeros, so its zero
/// 4 KiB runs are skipped; what comes after (incrementals) is written as is.
final class RawSink: RestoreSink {
    let storage: Storage
    let size: UInt64
    /// Set once the first stream is done: later writes may land on data.
    var overwriting = false

    /// Writeback started behind the writes (a file output).
    private let pacer: WritebackPacer?

    init(storage: Storage, size: UInt64) throws(VHDXError) {
        self.storage = storage
        self.size = size
        pacer = (storage as? FileStorage).map(WritebackPacer.init)
        try storage.resize(to: size)
    }

    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        pacer?.wrote(UInt64(data.count))
        guard !overwriting else { return try storage.write(data, at: offset) }
        try RawConverter.writeNonZeroRuns(storage, data, at: offset)
    }

    func zero(at offset: UInt64, length: UInt64) throws(VHDXError) {
        guard overwriting else { return }
        try storage.writeZeros(offset: offset, length: length)
    }
}

/// Writes a restore on a thread of its own, so reading and checking the next records goes on
/// meanwhile; at most `limit` bytes wait. A failure is thrown by the next call or by `drain`.
final class BackgroundRestoreSink: @unchecked Sendable {
    private let inner: RestoreSink
    private let queue = DispatchQueue(label: "swift-vhdx.restore.writer")
    private let room: DispatchSemaphore
    private let lock = NSLockLite()
    private var failure: VHDXError?
    private static let unit = 1 << 20

    init(_ inner: RestoreSink, limit: Int = 32 << 20) {
        self.inner = inner
        room = DispatchSemaphore(value: max(1, limit / BackgroundRestoreSink.unit))
    }

    func write(_ data: [UInt8], count: Int, at offset: UInt64) throws(VHDXError) {
        try enqueue(tokens: (count + BackgroundRestoreSink.unit - 1) / BackgroundRestoreSink.unit) { [inner] () throws(VHDXError) in
            try typed { try data.withUnsafeBytes { b in try inner.write(UnsafeRawBufferPointer(rebasing: b[0..<count]), at: offset) } }
        }
    }

    func zero(at offset: UInt64, length: UInt64) throws(VHDXError) {
        try enqueue(tokens: 1) { [inner] () throws(VHDXError) in try inner.zero(at: offset, length: length) }
    }

    /// Waits for every queued write; throws the first failure.
    func drain() throws(VHDXError) {
        queue.sync {}
        if let f = lock.withLock({ failure }) { throw f }
    }

    private func enqueue(tokens: Int, _ op: @escaping () throws(VHDXError) -> Void) throws(VHDXError) {
        if let f = lock.withLock({ failure }) { throw f }
        let n = max(1, tokens)
        for _ in 0..<n { room.wait() }
        let box = UncheckedBox(op)
        queue.async { [self] in
            defer { for _ in 0..<n { room.signal() } }
            guard lock.withLock({ failure }) == nil else { return }
            do throws(VHDXError) { try box.value() } catch { lock.withLock { failure = error } }
        }
    }
}

/// Carries a non-Sendable value to the one thread that uses it.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
