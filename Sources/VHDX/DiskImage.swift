#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDXFormat

/// A virtual disk to convert or compare: a VHDX image read through the engine (a differencing
/// image through its chain), or a raw disk image (any file that does not start with the VHDX
/// signature) whose bytes are the disk.
///
/// Open one with ``init(path:parents:)``; convert it with ``convert(to:format:overwrite:progress:)``
/// or ``writeRaw(toDescriptor:progress:)``, compare two with ``compare(with:options:progress:)``.
///
/// Besides `read`, it answers which ranges are *allocated*: for VHDX the BAT (data and partial
/// blocks are allocated; zero, unmapped, not-present and undefined ones are not and read as
/// zeros), for raw files the filesystem's holes (SEEK_DATA / SEEK_HOLE), every byte counting as
/// allocated where the filesystem cannot say. Unallocated ranges always read as zeros, so a
/// comparison can skip them without reading, and a conversion never reads them.
public final class DiskImage {
    /// What the file holds.
    public enum Format: String, Sendable {
        /// A VHDX image (it starts with the signature "vhdxfile").
        case vhdx
        /// Any other file: its bytes are the disk.
        case raw
    }

    /// A run of bytes `[range)` that is allocated, or not, throughout.
    package struct AllocationRun: Equatable, Sendable {
        package var range: Range<UInt64>
        package var allocated: Bool
        package init(range: Range<UInt64>, allocated: Bool) {
            self.range = range
            self.allocated = allocated
        }
    }

    /// "vhdxfile", the first 8 bytes of every VHDX file.
    package static let signature: [UInt8] = Array("vhdxfile".utf8)

    /// The path it was opened with.
    public let path: String
    /// The disk's size in bytes: a VHDX's virtual size, a raw file's length.
    public let virtualSize: UInt64
    /// What the disk is read through: the engine's handle, or the file's bytes themselves.
    enum Backing {
        case vhdx(VHDXFile)
        case raw
    }
    let backing: Backing
    let file: FileStorage
    /// The last run answered; a comparison asks about the same run many times in a row.
    private var cached: AllocationRun?
    /// Allocated runs are only scanned this far ahead: a reader needs their start, not their end.
    static let allocatedScanLimit: UInt64 = 256 << 20

    /// Opens `path` read-only: as VHDX when it starts with the signature (a damaged VHDX is an
    /// error, never silently compared as raw), otherwise as a raw image.
    /// A differencing VHDX's parents are found as ``VHDXFile/open(path:writable:parents:)`` finds
    /// them; the whole chain is opened here, or the error names every path it tried.
    public init(path: String, parents: ParentOptions = .default) throws(VHDXError) {
        let storage = try FileStorage(path: path, mode: .readOnly)
        var head = [UInt8](repeating: 0, count: 8)
        let n = try typed { try head.withUnsafeMutableBytes { b in try storage.readAvailable(into: b, at: 0) } }
        self.path = path
        self.file = storage
        if n == 8 && head == DiskImage.signature {
            let image = try VHDXFile(storage: storage)
            try image.attachParents(parents)
            self.backing = .vhdx(image)
            self.virtualSize = image.virtualSize
        } else {
            self.backing = .raw
            self.virtualSize = try storage.size()
        }
    }

    /// Whether the file is a VHDX image or a raw disk.
    public var format: Format {
        switch backing {
        case .vhdx: .vhdx
        case .raw: .raw
        }
    }

    /// The open image (the top of its chain), for VHDX inputs; nil for a raw disk.
    public var vhdx: VHDXFile? {
        switch backing {
        case .vhdx(let image): image
        case .raw: nil
        }
    }

    /// Fills `buffer` with disk bytes from `offset`; a range beyond `virtualSize` is refused
    /// (`outOfBounds`).
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        if case .vhdx(let vhdx) = backing { return try vhdx.read(into: buffer, at: offset) }
        let count = UInt64(buffer.count)
        guard offset <= virtualSize, count <= virtualSize - offset else {
            throw VHDXError(.outOfBounds, "read of \(count) bytes at offset \(offset) is beyond the \(virtualSize)-byte disk", path: path)
        }
        try file.read(into: buffer, at: offset)
    }

    /// The run of same-allocation bytes that starts at `offset` (which must be below
    /// `virtualSize`). The run may start before `offset`; it ends at or before `virtualSize`.
    package func allocationRun(at offset: UInt64) throws(VHDXError) -> AllocationRun {
        precondition(offset < virtualSize, "allocation query at \(offset) beyond the \(virtualSize)-byte disk")
        if let c = cached, c.range.contains(offset) { return c }
        let run: AllocationRun
        switch backing {
        case .vhdx(let image): run = try vhdxRun(image, at: offset)
        case .raw: run = rawRun(at: offset)
        }
        cached = run
        return run
    }

    /// Every run in offset order, from `start` to the end of the disk.
    package func forEachAllocationRun(from start: UInt64 = 0, _ body: (AllocationRun) throws(VHDXError) -> Void) throws(VHDXError) {
        var at = start
        while at < virtualSize {
            var run = try allocationRun(at: at)
            run.range = at..<run.range.upperBound
            try body(run)
            at = run.range.upperBound
        }
    }

    // MARK: VHDX: the BAT

    private func vhdxRun(_ image: VHDXFile, at offset: UInt64) throws(VHDXError) -> AllocationRun {
        if image.diskType == .differencing { return try chainRun(image, at: offset) }
        let bs = image.blockSize
        let blocks = image.geometry.dataBlockCount
        let first = offset / bs
        let allocated = isAllocated(try image.payloadEntry(block: first).state)
        let limit = allocated ? max(1, DiskImage.allocatedScanLimit / bs) : UInt64.max
        var next = first + 1
        while next < blocks, next - first < limit,
              isAllocated(try image.payloadEntry(block: next).state) == allocated {
            next += 1
        }
        return AllocationRun(range: first * bs..<min(next * bs, virtualSize), allocated: allocated)
    }

    /// A differencing image's runs come from the whole chain: allocated where some layer holds
    /// data, scanned at most `allocatedScanLimit` ahead.
    private func chainRun(_ image: VHDXFile, at offset: UInt64) throws(VHDXError) -> AllocationRun {
        // Resolved a growing window at a time, each byte once: a fragmented chain has short
        // runs, and resolving the whole scan limit per run would make a pass quadratic.
        let limit = min(virtualSize, offset + DiskImage.allocatedScanLimit)
        var window: UInt64 = 1 << 20
        var extents = try image.resolvedExtents(from: offset, to: min(limit, offset + window))
        // The run's kind is the first extent's. (The resolver covers every range it is asked
        // for; were it ever to answer nothing, "allocated" is the answer that is never wrong:
        // the caller reads the bytes.)
        guard let first = extents.first else { return AllocationRun(range: offset..<limit, allocated: true) }
        let allocated = first.kind == .data
        var end = offset  // resolved so far
        while true {
            if let change = extents.first(where: { ($0.kind == .data) != allocated }) {
                return AllocationRun(range: offset..<change.virtualOffset, allocated: allocated)
            }
            guard let last = extents.last else { break }
            end = last.end
            guard end < limit else { break }
            window *= 2
            extents = try image.resolvedExtents(from: end, to: min(limit, end + window))
        }
        return AllocationRun(range: offset..<min(end, limit), allocated: allocated)
    }

    /// Data blocks hold bytes; so, for this purpose, do invalid states (reading them reports
    /// the corruption). Differencing images never get here: their runs come from the chain.
    private func isAllocated(_ state: UInt8) -> Bool {
        switch Extent.Kind(state: state) {
        case .data, .partial, .invalid: return true
        case .notPresent, .zero, .unmapped, .undefined: return false
        }
    }

    // MARK: Raw: SEEK_DATA / SEEK_HOLE

    /// Holes are unallocated. Where the filesystem cannot say (or the query fails), everything
    /// from `offset` on is allocated: reading it is always correct, only slower.
    private func rawRun(at offset: UInt64) -> AllocationRun {
        let whole = AllocationRun(range: offset..<virtualSize, allocated: true)
        switch file.seek(data: true, from: offset) {
        case .none: return AllocationRun(range: offset..<virtualSize, allocated: false)
        case .unknown: return whole
        case .at(let data) where data > offset:
            return AllocationRun(range: offset..<min(data, virtualSize), allocated: false)
        case .at: break
        }
        guard case .at(let hole) = file.seek(data: false, from: offset), hole > offset else { return whole }
        return AllocationRun(range: offset..<min(hole, virtualSize), allocated: true)
    }
}
