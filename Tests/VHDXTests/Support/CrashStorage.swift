@testable import VHDX
import VHDXFormat

/// Storage that remembers which writes are durable (flushed) and can "crash" at a chosen flush:
/// the flush throws, and `crashImage` then gives what a disk could hold after power loss: every
/// flushed byte, plus any subset of the unflushed writes, each torn at 512-byte granularity.
final class CrashStorage: Storage {
    struct Crash: Error {}

    private(set) var volatile: [UInt8]
    private(set) var durable: [UInt8]
    /// Unflushed operations, in order: a write, or a resize (nil bytes).
    private var pending: [(offset: UInt64, bytes: [UInt8]?, size: UInt64)] = []
    private(set) var flushes = 0
    var crashAtFlush: Int?
    private(set) var crashed = false

    var isWritable: Bool { true }
    var name: String { "<crash>" }

    init(_ bytes: [UInt8]) {
        volatile = bytes
        durable = bytes
    }

    func size() throws(VHDXError) -> UInt64 { UInt64(volatile.count) }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        guard !crashed else { throw VHDXError(.io, "crashed") }
        guard offset <= UInt64(volatile.count), UInt64(buffer.count) <= UInt64(volatile.count) - offset else {
            throw VHDXError(.outOfBounds, "read past end", at: offset)
        }
        volatile.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count])) }
    }

    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        guard !crashed else { throw VHDXError(.io, "crashed") }
        let end = Int(offset) + buffer.count
        if end > volatile.count { volatile.append(contentsOf: repeatElement(0, count: end - volatile.count)) }
        volatile.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[Int(offset)..<end]).copyMemory(from: buffer) }
        pending.append((offset, Array(buffer), 0))
    }

    func resize(to size: UInt64) throws(VHDXError) {
        guard !crashed else { throw VHDXError(.io, "crashed") }
        if Int(size) < volatile.count { volatile.removeLast(volatile.count - Int(size)) }
        else { volatile.append(contentsOf: repeatElement(0, count: Int(size) - volatile.count)) }
        pending.append((0, nil, size))
    }

    func synchronize() throws(VHDXError) {
        guard !crashed else { throw VHDXError(.io, "crashed") }
        if flushes == crashAtFlush {
            crashed = true
            throw VHDXError(.io, "simulated crash at flush \(flushes)", cause: Crash())
        }
        flushes += 1
        durable = volatile
        pending.removeAll()
    }

    /// The durable image plus a random subset of unflushed writes, torn per 512-byte sector.
    func crashImage(seed: UInt64) -> [UInt8] {
        var rng = SplitMix(seed: seed)
        var image = durable
        for op in pending {
            guard let bytes = op.bytes else {
                // A size change is metadata: it either happened or not.
                if rng.next() % 2 == 0 {
                    if Int(op.size) < image.count { image.removeLast(image.count - Int(op.size)) }
                    else { image.append(contentsOf: repeatElement(0, count: Int(op.size) - image.count)) }
                }
                continue
            }
            for s in stride(from: 0, to: bytes.count, by: 512) where rng.next() % 2 == 0 {
                let at = Int(op.offset) + s
                let n = min(512, bytes.count - s)
                if at + n > image.count { image.append(contentsOf: repeatElement(0, count: at + n - image.count)) }
                image.replaceSubrange(at..<at + n, with: bytes[s..<s + n])
            }
        }
        return image
    }
}
