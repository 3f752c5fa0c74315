import VHDX

/// Passes everything to a CrashStorage and remembers the writes and resizes since the last
/// successful flush, so that crash images can be made from whole writes: any subset of them
/// landed, each completely (CrashStorage.crashImage tears every write per 512-byte sector).
public final class WriteRecorder: Storage {
    public enum Op { case write(UInt64, [UInt8]), resize(UInt64) }
    public let inner: CrashStorage
    public private(set) var pending: [Op] = []
    public var writeCount: Int { pending.filter { if case .write = $0 { true } else { false } }.count }
    public init(_ inner: CrashStorage) { self.inner = inner }

    public var isWritable: Bool { true }
    public var name: String { inner.name }
    public func size() throws(VHDXError) -> UInt64 { try inner.size() }
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) { try inner.read(into: buffer, at: offset) }
    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        try inner.write(buffer, at: offset)
        pending.append(.write(offset, Array(buffer)))
    }
    public func resize(to size: UInt64) throws(VHDXError) {
        try inner.resize(to: size)
        pending.append(.resize(size))
    }
    public func synchronize() throws(VHDXError) {
        try inner.synchronize()
        pending.removeAll()
    }

    /// `durable` plus the unflushed writes whose index `keep` accepts, in order. Size changes
    /// are all applied (CrashStorage's torn images cover them being lost).
    public func image(_ durable: [UInt8], keep: (Int) -> Bool) -> [UInt8] {
        var image = durable
        var w = 0
        for op in pending {
            switch op {
            case let .resize(size):
                if Int(size) < image.count { image.removeLast(image.count - Int(size)) } else { image += [UInt8](repeating: 0, count: Int(size) - image.count) }
            case let .write(offset, bytes):
                defer { w += 1 }
                guard keep(w) else { continue }
                let end = Int(offset) + bytes.count
                if end > image.count { image += [UInt8](repeating: 0, count: end - image.count) }
                image.withUnsafeMutableBytes { d in bytes.withUnsafeBytes { s in (d.baseAddress! + Int(offset)).copyMemory(from: s.baseAddress!, byteCount: s.count) } }
            }
        }
        return image
    }
}
