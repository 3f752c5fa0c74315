import VHDX
import VHDXFormat

/// Storage that remembers which writes are durable (flushed) and can "crash" at a chosen flush:
/// the flush throws, and `crashImage` then gives what a disk could hold after power loss: every
/// flushed byte, plus any subset of the unflushed writes, each torn at 512-byte granularity.
///
/// Flushing is O(1): unflushed operations keep what they overwrote, so the durable image is
/// rebuilt only when a crash image is asked for.
public final class CrashStorage: Storage {
    public struct Crash: Error {}

    private enum Op {
        case write(offset: Int, new: [UInt8], old: [UInt8], sizeBefore: Int)
        case resize(from: Int, to: Int, cutTail: [UInt8])
    }

    public private(set) var volatile: [UInt8]
    private var pending: [Op] = []
    public private(set) var flushes = 0
    public var crashAtFlush: Int?
    public private(set) var crashed = false

    public var isWritable: Bool { true }
    public var name: String { "<crash>" }

    public init(_ bytes: [UInt8]) { volatile = bytes }

    /// Everything flushed so far.
    public var durable: [UInt8] { undone() }

    public func size() throws(VHDXError) -> UInt64 { UInt64(volatile.count) }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        guard !crashed else { throw VHDXError(.io, "crashed") }
        guard offset <= UInt64(volatile.count), UInt64(buffer.count) <= UInt64(volatile.count) - offset else {
            throw VHDXError(.outOfBounds, "read past end", at: offset)
        }
        volatile.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count])) }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        guard !crashed else { throw VHDXError(.io, "crashed") }
        let start = Int(offset), end = start + buffer.count
        let sizeBefore = volatile.count
        let old = Array(volatile[min(start, sizeBefore)..<min(end, sizeBefore)])
        if end > volatile.count { volatile.append(contentsOf: [UInt8](repeating: 0, count: end - volatile.count)) }
        volatile.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[start..<end]).copyMemory(from: buffer) }
        pending.append(.write(offset: start, new: Array(buffer), old: old, sizeBefore: sizeBefore))
    }

    public func resize(to size: UInt64) throws(VHDXError) {
        guard !crashed else { throw VHDXError(.io, "crashed") }
        let from = volatile.count, to = Int(size)
        let cut = to < from ? Array(volatile[to..<from]) : []
        if to < from { volatile.removeLast(from - to) } else { volatile.append(contentsOf: [UInt8](repeating: 0, count: to - from)) }
        pending.append(.resize(from: from, to: to, cutTail: cut))
    }

    public func synchronize() throws(VHDXError) {
        guard !crashed else { throw VHDXError(.io, "crashed") }
        if flushes == crashAtFlush {
            crashed = true
            throw VHDXError(.io, "simulated crash at flush \(flushes)", cause: Crash())
        }
        flushes += 1
        pending.removeAll()
    }

    /// The volatile image with every unflushed operation undone.
    private func undone() -> [UInt8] {
        var image = volatile
        for op in pending.reversed() {
            switch op {
            case let .write(offset, new, old, sizeBefore):
                image.overwrite(offset..<offset + old.count, with: old)
                if image.count > sizeBefore && offset + new.count > sizeBefore { image.removeLast(image.count - sizeBefore) }
            case let .resize(from, to, cutTail):
                if to < from { image.append(contentsOf: cutTail) } else { image.removeLast(to - from) }
            }
        }
        return image
    }

    /// The durable image plus a random subset of unflushed writes, torn per 512-byte sector.
    public func crashImage(seed: UInt64) -> [UInt8] {
        var rng = SplitMix(seed: seed)
        var image = undone()
        for op in pending {
            switch op {
            case let .resize(_, to, _):
                // A size change is metadata: it either happened or not.
                guard rng.next() % 2 == 0 else { continue }
                if to < image.count { image.removeLast(image.count - to) } else { image.append(contentsOf: [UInt8](repeating: 0, count: to - image.count)) }
            case let .write(offset, bytes, _, _):
                for s in stride(from: 0, to: bytes.count, by: 512) where rng.next() % 2 == 0 {
                    let at = offset + s
                    let n = min(512, bytes.count - s)
                    if at + n > image.count { image.append(contentsOf: [UInt8](repeating: 0, count: at + n - image.count)) }
                    image.overwrite(at..<at + n, with: bytes[s..<s + n])
                }
            }
        }
        return image
    }
}
