import VHDX
import VHDXChangeTracking
import VHDXFormat
import VHDXSets

/// A served disk over the engine: one open chain (its top file writable unless read-only),
/// change tracking attached as every writing command attaches it, and what `close` must
/// release (a set's lock, a `--checkpoint` to delete).
///
/// Every call takes one lock: `VHDXFile` is not thread-safe, and one handle serialising every
/// connection's requests is what makes `canMultiConn` true (see `info`).
package final class EngineDisk: ServedDisk, @unchecked Sendable {
    /// What the disk holds besides its chain, and what `close` does with it.
    enum Hold {
        /// A `.vhdx`, an `.avhdx` chain or an exported chain: the chain alone.
        case chain
        /// A set: its lock held (exclusive when writable) while serving; its change IDs answered
        /// through the set (aliases of merged files followed).
        case set(VHDSet)
        /// `--checkpoint`: the frozen chain served, the set released; on close the checkpoint is
        /// deleted keeping its reference point.
        case checkpoint(setPath: String, snapshot: GUID)
        /// `--overlay`: the new child on top of SOURCE's chain (SOURCE's set, if any, held shared).
        case overlay(child: String, set: VHDSet?)
    }

    package let info: ServedDiskInfo
    private let lock = EngineLock()
    private let log: @Sendable (String) -> Void
    // Guarded by `lock`:
    private var top: VHDXFile?
    private var hold: Hold
    private var allocation: AllocationMap?
    private var dirtyMaps: [String: DirtyMap] = [:]
    /// Read-only exports: the handles reads run on in parallel (nil: reads take `lock`).
    private let readers: ReaderPool?

    package static let allocationContext = "base:allocation"
    package static let dirtyPrefix = "qemu:dirty-bitmap:"

    init(top: VHDXFile, hold: Hold, readOnly: Bool, description: String, readers: ReaderPool? = nil,
         log: @escaping @Sendable (String) -> Void) {
        precondition(readers == nil || readOnly, "parallel readers only on a read-only export: they would not see writes")
        self.top = top
        self.readers = readers
        self.hold = hold
        self.log = log
        let writable = !readOnly
        // A FAST_ZERO request is honoured only where the engine zeroes by a BAT state change
        // (whole blocks of a dynamic or differencing file); elsewhere it answers ENOTSUP.
        info = ServedDiskInfo(
            size: top.virtualSize, readOnly: readOnly, minimumBlockSize: top.logicalSectorSize,
            preferredBlockSize: max(4096, top.physicalSectorSize),
            canTrim: writable, canWriteZeroes: writable, canFastZero: writable && top.diskType != .fixed,
            // Every connection's requests go through this one engine handle (and this lock), and
            // `flush` makes everything that handle completed durable (log, BAT, payload, fdatasync):
            // a flush on any connection covers every connection's completed writes.
            canMultiConn: true,
            description: description)
    }

    private func locked<T>(_ body: (VHDXFile) throws(ServeError) -> T) throws(ServeError) -> T {
        try lock.withLock { () throws(ServeError) -> T in
            guard let top else { throw ServeError(.shutdown, "the disk is closed: the server is stopping") }
            return try body(top)
        }
    }

    private func requireWritable(_ what: String) throws(ServeError) {
        if info.readOnly { throw ServeError(.notPermitted, "\(what): the export is read-only") }
    }

    private func engine<T>(_ what: String, _ body: () throws(VHDXError) -> T) throws(ServeError) -> T {
        do { return try body() } catch { throw ServeError.engine(error, what) }
    }

    private func checkRange(_ what: String, _ offset: UInt64, _ length: UInt64, past: ServeError.Code) throws(ServeError) {
        guard offset <= info.size, length <= info.size - offset else {
            throw ServeError(past, "\(what) at \(offset) of \(length) bytes reaches past the end of the \(info.size)-byte disk")
        }
    }

    // MARK: - Data

    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ServeError) {
        try checkRange("read", offset, UInt64(buffer.count), past: .invalid)
        if let readers { return try readers.read(into: buffer, at: offset) }
        try locked { (top) throws(ServeError) in
            try engine("read at \(offset) of \(buffer.count) bytes") { () throws(VHDXError) in try top.read(into: buffer, at: offset) }
        }
    }

    package func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, fua: Bool) throws(ServeError) {
        let what = "write at \(offset) of \(data.count) bytes"
        try requireWritable(what)
        try checkRange(what, offset, UInt64(data.count), past: .noSpace)
        try locked { (top) throws(ServeError) in
            try changing(top, offset, UInt64(data.count), fua: fua, what) { () throws(VHDXError) in try top.write(data, at: offset) }
        }
    }

    package func flush() throws(ServeError) {
        try locked { (top) throws(ServeError) in
            guard !info.readOnly else { return }
            try engine("flush") { () throws(VHDXError) in try top.flush() }
        }
    }

    package func trim(at offset: UInt64, length: UInt64, fua: Bool) throws(ServeError) {
        let what = "trim at \(offset) of \(length) bytes"
        try requireWritable(what)
        try checkRange(what, offset, length, past: .invalid)  // proto.md: EINVAL for reads and trims past the end, ENOSPC for writes
        try locked { (top) throws(ServeError) in
            try changing(top, offset, length, fua: fua, what) { () throws(VHDXError) in try top.trim(at: offset, length: length) }
        }
    }

    package func writeZeroes(at offset: UInt64, length: UInt64, mayDeallocate: Bool, fastOnly: Bool, fua: Bool) throws(ServeError) {
        let what = "write zeroes at \(offset) of \(length) bytes"
        try requireWritable(what)
        try checkRange(what, offset, length, past: .noSpace)
        try locked { (top) throws(ServeError) in
            if fastOnly, !zeroesByStateChange(top, offset, length, mayDeallocate: mayDeallocate) {
                throw ServeError(.notSupported, "\(what): only whole blocks of a dynamic or differencing disk are zeroed without writing data")
            }
            try changing(top, offset, length, fua: fua, what) { () throws(VHDXError) in
                if mayDeallocate { return try top.writeZeroes(at: offset, length: length) }
                // NO_HOLE: zeros are written as data, so the range stays allocated.
                let zeros = [UInt8](repeating: 0, count: Int(min(length, 1 << 20)))
                var v = offset
                while v < offset + length {
                    let n = Int(min(UInt64(zeros.count), offset + length - v))
                    try top.write(n == zeros.count ? zeros : Array(zeros[..<n]), at: v)
                    v += UInt64(n)
                }
            }
        }
    }

    /// Whether the engine zeroes [offset, offset+length) by BAT state changes alone: whole
    /// blocks (the last may end at the disk's end) of a file that is not fixed. Partial blocks
    /// get zeros written.
    private func zeroesByStateChange(_ top: VHDXFile, _ offset: UInt64, _ length: UInt64, mayDeallocate: Bool) -> Bool {
        guard mayDeallocate, top.diskType != .fixed else { return false }
        let end = offset + length
        return offset % top.blockSize == 0 && (end % top.blockSize == 0 || end == top.virtualSize)
    }

    /// A change through the engine, then what it makes stale: the cached dirty maps (a map
    /// must never be smaller than tracking's answer now) and the allocation runs it touched.
    private func changing(_ top: VHDXFile, _ offset: UInt64, _ length: UInt64, fua: Bool, _ what: String,
                          _ body: () throws(VHDXError) -> Void) throws(ServeError) {
        dirtyMaps.removeAll()
        defer {
            do { try allocation?.refresh(top, offset: offset, length: length) } catch {
                allocation = nil  // rebuilt at the next request rather than told stale
            }
        }
        try engine(what, body)
        if fua { try engine("\(what) (FUA flush)") { () throws(VHDXError) in try top.flush() } }
    }

    // MARK: - Block status

    package func metaContexts(matching query: String) -> [String] {
        (try? locked { (top) throws(ServeError) -> [String] in
            if query.isEmpty || query.hasSuffix(":") {
                var names: [String] = []
                if EngineDisk.allocationContext.hasPrefix(query) { names.append(EngineDisk.allocationContext) }
                if (EngineDisk.dirtyPrefix).hasPrefix(query) || query.hasPrefix(EngineDisk.dirtyPrefix) {
                    names += answerableIDs(top).map { EngineDisk.dirtyPrefix + $0 }.filter { $0.hasPrefix(query) }
                }
                return names
            }
            if query == EngineDisk.allocationContext { return [query] }
            if query.hasPrefix(EngineDisk.dirtyPrefix) {
                do { _ = try dirtyMap(top, String(query.dropFirst(EngineDisk.dirtyPrefix.count))) } catch {
                    log("\(query) not offered: \(error)")
                    return []
                }
                return [query]
            }
            return []
        }) ?? []
    }

    package func blockStatus(context: String, at offset: UInt64, length: UInt64, maxExtents: Int) throws(ServeError) -> [BlockStatusExtent] {
        try checkRange("block status", offset, length, past: .invalid)
        return try locked { (top) throws(ServeError) -> [BlockStatusExtent] in
            if context == EngineDisk.allocationContext {
                if allocation == nil {
                    allocation = try engine("base:allocation map") { () throws(VHDXError) in try AllocationMap(of: top) }
                }
                return allocation!.extents(at: offset, length: length, alignment: info.minimumBlockSize, maxExtents: maxExtents)
            }
            guard context.hasPrefix(EngineDisk.dirtyPrefix) else {
                throw ServeError(.invalid, "block status of \(context): not a context this disk offers")
            }
            let map: DirtyMap
            do { map = try dirtyMap(top, String(context.dropFirst(EngineDisk.dirtyPrefix.count))) } catch {
                throw ServeError(.io, "block status of \(context): \(error)")
            }
            return map.extents(at: offset, length: length, alignment: info.minimumBlockSize, maxExtents: maxExtents)
        }
    }

    /// The dirty map of `text` (a change ID): tracking's answer, computed once and kept until
    /// the next change. Throws tracking's error when the ID cannot be answered.
    private func dirtyMap(_ top: VHDXFile, _ text: String) throws -> DirtyMap {
        if let m = dirtyMaps[text] { return m }
        guard let id = ChangeID(text: text) else {
            throw ChangeTrackingError(.unknownID, "\"\(text)\" is not a change ID (\(ChangeID.prefix):…, as `vhdx track seal` prints it)")
        }
        let answer: ChangeAnswer
        switch hold {
        case .set(let set): answer = try set.changes(in: top, since: id)
        default: answer = try ChangeTracking.changes(in: top, since: id)
        }
        let m = DirtyMap(ranges: answer.ranges, size: top.virtualSize)
        dirtyMaps[text] = m
        return m
    }

    /// Every change ID the disk can answer now: those each layer's tracking retains, and a
    /// set's snapshots and reference points; each one is asked, and one that cannot be
    /// answered is left out with the reason in the log.
    private func answerableIDs(_ top: VHDXFile) -> [String] {
        var candidates: [String] = []
        for layer in top.chain {
            do {
                if let t = try ChangeTracker.view(of: layer, observe: false) { candidates += t.retainedIDs.map(\.description) }
            } catch { log("\(layer.path): its change tracking cannot be read: \(error)") }
        }
        if case .set(let set) = hold { candidates += set.record.snapshots.compactMap { $0.changeID?.description } }
        var seen = Set<String>()
        return candidates.filter { seen.insert($0).inserted }.filter { text in
            do { _ = try dirtyMap(top, text); return true } catch {
                log("\(EngineDisk.dirtyPrefix)\(text) not offered: \(error)")
                return false
            }
        }
    }

    // MARK: - Close

    package func close() throws(ServeError) {
        var (top, hold): (VHDXFile?, Hold) = lock.withLock {
            defer { self.top = nil; self.allocation = nil; self.dirtyMaps = [:]; self.hold = .chain }
            return (self.top, self.hold)
        }
        guard let path = top?.path else { return }
        readers?.close()
        // A writable close persists tracking (`willClose`) and leaves an empty log.
        try engine("close \(path)") { () throws(VHDXError) in try top?.close() }
        // The chain's files are let go before the set may merge into them.
        top = nil
        if case .checkpoint(let setPath, let snapshot) = hold {
            hold = .chain
            do {
                let set = try VHDSet.open(path: setPath, writable: true)
                _ = try set.delete(snapshot, keepReference: true)
            } catch {
                throw ServeError(.io, "\(setPath): the checkpoint {\(snapshot)} taken for serving could not be deleted (\(error)); it is kept: `vhdx set delete \(setPath) \(snapshot) --keep-reference` deletes it keeping its reference point")
            }
        }
        hold = .chain  // a held set's lock is released here
    }
}
