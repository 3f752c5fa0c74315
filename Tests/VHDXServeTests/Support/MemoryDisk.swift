#if canImport(Glibc)
import Glibc
#endif
import Synchronization
@testable import VHDXServe

/// A `ServedDisk` over bytes in memory, for the server's tests: `base:allocation` from which
/// 64 KiB blocks were ever written (trim and zeroing with deallocation make them holes again),
/// and `qemu:dirty-bitmap:since-start` for the blocks changed since it was made.
final class MemoryDisk: ServedDisk {
    static let granularity = 64 << 10
    static let dirtyContext = "qemu:dirty-bitmap:since-start"

    let info: ServedDiskInfo
    private let state: Mutex<State>

    struct State {
        var bytes: [UInt8]
        var allocated: [Bool]
        var dirty: [Bool]
        var reads = 0
        var writes = 0
        var fuaWrites = 0
        var flushes = 0
        var trims = 0
        var zeroes: [(offset: UInt64, length: UInt64, mayDeallocate: Bool, fua: Bool)] = []
        var closes = 0
        var metaQueries: [String] = []
        /// The next read fails with this.
        var failNextRead: ServeError?
    }

    init(size: Int, readOnly: Bool = false, minimumBlockSize: UInt32 = 512, fill: ((Int) -> UInt8)? = nil,
         allocatedBlocks: Set<Int> = [], description: String = "a disk in memory") {
        precondition(size % Self.granularity == 0)
        info = ServedDiskInfo(size: UInt64(size), readOnly: readOnly, minimumBlockSize: minimumBlockSize, canTrim: true,
                              canWriteZeroes: true, canFastZero: true, canMultiConn: true, description: description)
        var bytes = [UInt8](repeating: 0, count: size)
        var allocated = [Bool](repeating: false, count: size / Self.granularity)
        for b in allocatedBlocks {
            allocated[b] = true
            if let fill { for i in b * Self.granularity..<(b + 1) * Self.granularity { bytes[i] = fill(i) } }
        }
        state = Mutex(State(bytes: bytes, allocated: allocated, dirty: [Bool](repeating: false, count: size / Self.granularity)))
    }

    func snapshot<T>(_ body: (State) -> T) -> T { state.withLock { body($0) } }
    var bytes: [UInt8] { snapshot { $0.bytes } }
    func failNextRead(_ e: ServeError) { state.withLock { $0.failNextRead = e } }

    func metaContexts(matching query: String) -> [String] {
        let all = ["base:allocation", Self.dirtyContext]
        state.withLock { $0.metaQueries.append(query) }
        if query.isEmpty { return all }
        if query.hasSuffix(":") { return all.filter { $0.hasPrefix(query) } }
        return all.filter { $0 == query }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ServeError) {
        try state.withLock { (s: inout State) throws(ServeError) in
            s.reads += 1
            if let e = s.failNextRead { s.failNextRead = nil; throw e }
            let o = Int(offset)
            guard o + buffer.count <= s.bytes.count else { throw ServeError(.invalid, "read past the end") }
            s.bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[o..<o + buffer.count])) }
        }
    }

    /// Each write takes this long (outside the lock): requests that are still at the disk.
    let writeDelay = Mutex<UInt32>(0)

    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, fua: Bool) throws(ServeError) {
        let delay = writeDelay.withLock { $0 }
        if delay > 0 { usleep(delay) }
        try state.withLock { (s: inout State) throws(ServeError) in
            guard !info.readOnly else { throw ServeError(.notPermitted, "read-only") }
            let o = Int(offset)
            guard o + data.count <= s.bytes.count else { throw ServeError(.noSpace, "write past the end") }
            s.bytes.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[o..<o + data.count]).copyMemory(from: data) }
            Self.mark(&s, o, data.count, allocate: true)
            s.writes += 1
            if fua { s.fuaWrites += 1 }
        }
    }

    func flush() throws(ServeError) { state.withLock { $0.flushes += 1 } }

    func trim(at offset: UInt64, length: UInt64, fua: Bool) throws(ServeError) {
        state.withLock { s in
            s.trims += 1
            Self.zero(&s, Int(offset), Int(length), deallocate: true)
        }
    }

    func writeZeroes(at offset: UInt64, length: UInt64, mayDeallocate: Bool, fastOnly: Bool, fua: Bool) throws(ServeError) {
        try state.withLock { (s: inout State) throws(ServeError) in
            if fastOnly && !mayDeallocate { throw ServeError(.notSupported, "zeroing without deallocating writes data") }
            s.zeroes.append((offset, length, mayDeallocate, fua))
            Self.zero(&s, Int(offset), Int(length), deallocate: mayDeallocate)
        }
    }

    func blockStatus(context: String, at offset: UInt64, length: UInt64, maxExtents: Int) throws(ServeError) -> [BlockStatusExtent] {
        state.withLock { s in
            let g = UInt64(Self.granularity)
            var out: [BlockStatusExtent] = []
            var at = offset
            let end = min(offset + length, UInt64(s.bytes.count))
            while at < end && out.count <= maxExtents {
                let block = Int(at / g)
                let flags: UInt32
                if context == "base:allocation" {
                    flags = s.allocated[block] ? 0 : NBDState.hole | NBDState.zero
                } else {
                    flags = s.dirty[block] ? NBDState.dirty : 0
                }
                let stop = min((UInt64(block) + 1) * g, end)
                let n = UInt32(stop - at)
                if let last = out.last, last.flags == flags, UInt64(last.length) + UInt64(n) < UInt64(UInt32.max) {
                    out[out.count - 1].length += n
                } else {
                    if out.count == maxExtents { break }
                    out.append(BlockStatusExtent(length: n, flags: flags))
                }
                at = stop
            }
            return out
        }
    }

    func close() throws(ServeError) { state.withLock { $0.closes += 1 } }

    private static func mark(_ s: inout State, _ offset: Int, _ count: Int, allocate: Bool) {
        guard count > 0 else { return }
        for b in offset / granularity...(offset + count - 1) / granularity {
            s.dirty[b] = true
            if allocate { s.allocated[b] = true }
        }
    }

    private static func zero(_ s: inout State, _ offset: Int, _ count: Int, deallocate: Bool) {
        guard count > 0 else { return }
        for i in offset..<offset + count { s.bytes[i] = 0 }
        mark(&s, offset, count, allocate: !deallocate)
        guard deallocate else { return }
        // Only whole blocks become holes.
        var b = (offset + granularity - 1) / granularity
        while (b + 1) * granularity <= offset + count {
            s.allocated[b] = false
            b += 1
        }
    }
}
