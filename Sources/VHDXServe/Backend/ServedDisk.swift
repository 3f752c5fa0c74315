/// The one disk an NBD server serves: what the protocol layer asks of the engine.
///
/// The contract between the two halves of `vhdx serve`: the server (negotiation, requests,
/// replies; Server/ and Protocol/) knows nothing of VHDX, and a disk (Backend/) knows nothing
/// of the wire. A disk is used from several threads at once (the server runs its calls on a
/// thread pool, one connection's requests possibly overlapping another's), so every
/// implementation serialises itself: writers go through its one engine handle.
///
/// Offsets and lengths handed in are already checked by the server against `info.size` and the
/// block-size constraints; a disk checks again only what it must to stay safe.
package protocol ServedDisk: AnyObject, Sendable {
    /// What the export advertises (size, flags, block-size constraints).
    var info: ServedDiskInfo { get }

    /// The meta contexts this disk offers whose names match `query`: an exact name, or a
    /// prefix ending in ":" (e.g. "base:" or "qemu:dirty-bitmap:"), or "" for all. Contexts it
    /// cannot answer are left out, and the disk logs why (e.g. an expired change ID).
    func metaContexts(matching query: String) -> [String]

    /// Fills `buffer` with the disk's bytes at `offset`.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ServeError)

    /// Writes `data` at `offset` through the engine (logged, seen by change tracking). With
    /// `fua`, the write is durable when this returns.
    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, fua: Bool) throws(ServeError)

    /// Makes every completed write (of every connection) durable.
    func flush() throws(ServeError)

    /// The range may read anything afterwards (the engine reads it as zeros or unmapped).
    func trim(at offset: UInt64, length: UInt64, fua: Bool) throws(ServeError)

    /// The range reads zeros afterwards. `mayDeallocate` is false with NBD_CMD_FLAG_NO_HOLE;
    /// with `fastOnly` (NBD_CMD_FLAG_FAST_ZERO) a disk that cannot zero without writing data
    /// throws `.notSupported` at once and changes nothing.
    func writeZeroes(at offset: UInt64, length: UInt64, mayDeallocate: Bool, fastOnly: Bool, fua: Bool) throws(ServeError)

    /// Extents of `context` (a name `metaContexts` offered) from `offset`, in order and
    /// contiguous, covering at least one byte and at most `length` bytes; at most `maxExtents`.
    func blockStatus(context: String, at offset: UInt64, length: UInt64, maxExtents: Int) throws(ServeError) -> [BlockStatusExtent]

    /// Ends serving: the image is closed cleanly (log empty, tracking persisted); a
    /// `--checkpoint` is released. Called once, after every connection has ended.
    func close() throws(ServeError)
}

/// What an export advertises in `NBD_INFO_EXPORT` / `NBD_INFO_BLOCK_SIZE`.
package struct ServedDiskInfo: Sendable, Equatable {
    package var size: UInt64
    package var readOnly: Bool
    /// The logical sector size (512 or 4096): the smallest request the disk serves.
    package var minimumBlockSize: UInt32
    /// 4 KiB or more: requests this aligned avoid read-modify-write.
    package var preferredBlockSize: UInt32
    /// The largest request accepted (the server's request cap, 32 MiB).
    package var maximumBlockSize: UInt32
    package var canTrim: Bool
    package var canWriteZeroes: Bool
    package var canFastZero: Bool
    /// True only when `flush` makes every connection's completed writes durable.
    package var canMultiConn: Bool
    /// For `NBD_INFO_DESCRIPTION`.
    package var description: String

    package init(size: UInt64, readOnly: Bool, minimumBlockSize: UInt32, preferredBlockSize: UInt32 = 4096,
                 maximumBlockSize: UInt32 = 32 << 20, canTrim: Bool, canWriteZeroes: Bool, canFastZero: Bool,
                 canMultiConn: Bool, description: String) {
        self.size = size
        self.readOnly = readOnly
        self.minimumBlockSize = minimumBlockSize
        self.preferredBlockSize = preferredBlockSize
        self.maximumBlockSize = maximumBlockSize
        self.canTrim = canTrim
        self.canWriteZeroes = canWriteZeroes
        self.canFastZero = canFastZero
        self.canMultiConn = canMultiConn
        self.description = description
    }
}

/// One block-status descriptor: `length` bytes with the context's `flags`
/// (`base:allocation`: 1 = HOLE, 2 = ZERO; `qemu:dirty-bitmap:*`: 1 = DIRTY).
package struct BlockStatusExtent: Sendable, Equatable {
    package var length: UInt32
    package var flags: UInt32
    package init(length: UInt32, flags: UInt32) {
        self.length = length
        self.flags = flags
    }
}

/// A failed disk call: the NBD error a reply carries, and what the server's log says.
package struct ServeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The NBD protocol's error values (doc/proto.md, "Error values").
    package enum Code: UInt32, Sendable {
        case notPermitted = 1      // NBD_EPERM: a write to a read-only export
        case io = 5                // NBD_EIO
        case noMemory = 12         // NBD_ENOMEM
        case invalid = 22          // NBD_EINVAL: misaligned, bad flags
        case noSpace = 28          // NBD_ENOSPC
        case overflow = 75         // NBD_EOVERFLOW: past the end, over the size cap
        case notSupported = 95     // NBD_ENOTSUP: FAST_ZERO that would be slow
        case shutdown = 108        // NBD_ESHUTDOWN: the server is stopping
    }
    package var code: Code
    package var message: String
    package init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    package var description: String { message }
}

/// How `vhdx serve` opens its SOURCE.
package struct ServeSourceOptions: Sendable {
    /// Serve read-only (writes are EPERM); nothing is written to any file.
    package var readOnly = false
    /// Serve read-write with every write going into this new child of SOURCE (created; SOURCE and
    /// its chain untouched).
    package var overlay: String?
    /// On a set: take a checkpoint, serve the frozen chain read-only, delete the checkpoint
    /// (keeping its reference point) on close.
    package var checkpoint = false
    /// The export name advertised (default: SOURCE's file name).
    package var name: String?
    package init() {}
}
