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

    init(storage: Storage, size: UInt64) throws(VHDXError) {
        self.storage = storage
        self.size = size
        try storage.resize(to: size)
    }

    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        guard !overwriting else { return try storage.write(data, at: offset) }
        var i = 0
        while i < data.count {
            let n = min(4096, data.count - i)
            var j = i
            let zero = isAllZero(UnsafeRawBufferPointer(rebasing: data[i..<i + n]))
            while j < data.count, isAllZero(UnsafeRawBufferPointer(rebasing: data[j..<min(j + 4096, data.count)])) == zero { j = min(j + 4096, data.count) }
            if !zero { try storage.write(UnsafeRawBufferPointer(rebasing: data[i..<j]), at: offset + UInt64(i)) }
            i = j
        }
    }

    func zero(at offset: UInt64, length: UInt64) throws(VHDXError) {
        guard overwriting else { return }
        try storage.writeZeros(offset: offset, length: length)
    }
}
