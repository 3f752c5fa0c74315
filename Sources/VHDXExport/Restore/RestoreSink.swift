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

/// A restore's writes on a thread of its own (`BackgroundWriter`), so reading and checking
/// the next records goes on meanwhile.
final class BackgroundRestoreSink {
    private let inner: RestoreSink
    private let writer = BackgroundWriter()

    init(_ inner: RestoreSink) { self.inner = inner }

    func write(_ data: [UInt8], count: Int, at offset: UInt64) throws(VHDXError) {
        try writer.enqueue(bytes: count) { [inner] () throws(VHDXError) in
            try typed { try data.withUnsafeBytes { b in try inner.write(UnsafeRawBufferPointer(rebasing: b[0..<count]), at: offset) } }
        }
    }

    func zero(at offset: UInt64, length: UInt64) throws(VHDXError) {
        try writer.enqueue(bytes: 0) { [inner] () throws(VHDXError) in try inner.zero(at: offset, length: length) }
    }

    /// Waits for every queued write; throws the first failure.
    func drain() throws(VHDXError) { try writer.drain() }
}
