import VHDX

/// More read-only handles on a read-only export's chain, so the reads of several connections
/// (nbdcopy opens four when the server advertises CAN_MULTI_CONN) run in parallel instead of one
/// at a time behind the disk's one engine lock. Nothing writes to a read-only export, so every
/// handle reads the same bytes. Each handle has a lock of its own (`VHDXFile` is not
/// thread-safe): a read takes the first free one, or waits for the one its turn names.
final class ReaderPool: @unchecked Sendable {
    private typealias Handle = (lock: EngineLock, file: VHDXFile)
    /// Guarded by `state`; emptied by `close`, which lets the files (and their locks) go.
    private var handles: [Handle]
    private var turn = 0
    private let state = EngineLock()

    /// `count` handles from `open` (each a separate read-only open of the same chain).
    init(count: Int, open: () throws(VHDXError) -> VHDXFile) throws(VHDXError) {
        var handles: [Handle] = []
        for _ in 0..<count { handles.append((EngineLock(), try open())) }
        self.handles = handles
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ServeError) {
        let (all, start) = state.withLock { () -> ([Handle], Int) in
            turn = handles.isEmpty ? 0 : (turn + 1) % handles.count
            return (handles, turn)
        }
        guard !all.isEmpty else { throw ServeError(.shutdown, "the disk is closed: the server is stopping") }
        for k in 0..<all.count {
            let h = all[(start + k) % all.count]
            if try h.lock.withLockIfFree({ () throws(ServeError) -> Bool in try read(h.file, buffer, offset) }) != nil { return }
        }
        _ = try all[start].lock.withLock { () throws(ServeError) -> Bool in try read(all[start].file, buffer, offset) }
    }

    private func read(_ file: VHDXFile, _ buffer: UnsafeMutableRawBufferPointer, _ offset: UInt64) throws(ServeError) -> Bool {
        do { try file.read(into: buffer, at: offset) } catch { throw ServeError.engine(error, "read at \(offset) of \(buffer.count) bytes") }
        return true
    }

    /// Closes every handle, each after its read in progress (the server stops only once no
    /// request is in flight); later reads are ESHUTDOWN.
    func close() {
        let all = state.withLock { () -> [Handle] in
            defer { handles = [] }
            return handles
        }
        for h in all { h.lock.withLock { try? h.file.close() } }
    }
}
