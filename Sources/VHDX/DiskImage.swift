#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDXFormat

/// A virtual disk that can be compared: a VHDX image read through the engine, or a raw disk
/// image (any file that does not start with the VHDX signature) whose bytes are the disk.
///
/// Besides `read`, it answers which ranges are *allocated*: for VHDX the BAT (data and partial
/// blocks are allocated; zero, unmapped, not-present and undefined ones are not and read as
/// zeros), for raw files the filesystem's holes (SEEK_DATA / SEEK_HOLE), every byte counting as
/// allocated where the filesystem cannot say. Unallocated ranges always read as zeros, so a
/// comparison can skip them without reading.
package final class DiskImage {
    package enum Format: String, Sendable { case vhdx, raw }

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

    package let path: String
    package let format: Format
    package let virtualSize: UInt64
    /// The open image, for VHDX inputs.
    package let vhdx: VHDXFile?
    let file: FileStorage
    /// The last run answered; a comparison asks about the same run many times in a row.
    private var cached: AllocationRun?
    /// Allocated runs are only scanned this far ahead: a reader needs their start, not their end.
    static let allocatedScanLimit: UInt64 = 256 << 20

    /// Opens `path` read-only: as VHDX when it starts with the signature (a damaged VHDX is an
    /// error, never silently compared as raw), otherwise as a raw image.
    package init(path: String, parents: ParentOptions = .default) throws(VHDXError) {
        let storage = try FileStorage(path: path, mode: .readOnly)
        var head = [UInt8](repeating: 0, count: 8)
        let n = try typed { try head.withUnsafeMutableBytes { b in try storage.readAvailable(into: b, at: 0) } }
        self.path = path
        self.file = storage
        if n == 8 && head == DiskImage.signature {
            let image = try VHDXFile(storage: storage)
            try image.attachParents(parents)
            self.format = .vhdx
            self.vhdx = image
            self.virtualSize = image.virtualSize
        } else {
            self.format = .raw
            self.vhdx = nil
            self.virtualSize = try storage.size()
        }
    }

    /// Fills `buffer` with disk bytes from `offset`; the range must lie within `virtualSize`.
    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        if let vhdx { return try vhdx.read(into: buffer, at: offset) }
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
        let run = vhdx != nil ? try vhdxRun(at: offset) : rawRun(at: offset)
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

    private func vhdxRun(at offset: UInt64) throws(VHDXError) -> AllocationRun {
        let image = vhdx!
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
        var allocated: Bool?
        var at = offset
        var window: UInt64 = 1 << 20
        while at < limit {
            let extents = try image.resolvedExtents(from: at, to: min(limit, at + window))
            if allocated == nil { allocated = extents[0].kind == .data }
            if let change = extents.first(where: { ($0.kind == .data) != allocated }) {
                return AllocationRun(range: offset..<change.virtualOffset, allocated: allocated!)
            }
            at = extents.last!.end
            window *= 2
        }
        return AllocationRun(range: offset..<limit, allocated: allocated!)
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
