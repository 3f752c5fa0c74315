#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDXFormat

/// Writes an image's virtual disk as a raw file: holes for every run of zeros (unallocated
/// blocks and all-zero 4 KiB pieces of data blocks), so the output is as sparse as qemu-img's.
package struct RawConverter {
    package typealias Progress = (_ done: UInt64, _ total: UInt64) -> Void
    // 256 KiB: larger writes made the kernel fault in big page-cache pages and ran 3x slower here.
    static let chunk = 256 << 10
    static let zeroGranule = 4096

    package let source: VHDXFile
    /// How data extents reach a file output: in the kernel where it can (`CopyOffload`), else
    /// read and written here. Off with VHDX_COPY_OFFLOAD=0; tests give it a failing kernel call.
    package var copyOffload = CopyOffload()
    package init(source: VHDXFile) { self.source = source }

    /// Writes to `path` through a temporary file in the same directory, renamed over `path` only
    /// once complete and flushed, so a failure never leaves a half-written output. A `path` that
    /// is a layer of the source's chain is refused; an existing one is replaced only with `overwrite`.
    /// Returns the offload's account (bytes copied in the kernel and through the fallback).
    @discardableResult
    package func write(toPath path: String, overwrite: Bool = true, progress: Progress? = nil) throws(VHDXError) -> CopyOffload {
        try refuseOverwritingInput(path, inputs: source.chain.map { $0.storage.name })
        var offload = copyOffload
        try writeAtomically(path, overwrite: overwrite) { (out) throws(VHDXError) in
            try out.resize(to: source.virtualSize)
            let paced = RawConverter.startingWriteback(of: out, progress: progress)
            if offload.enabled {
                try copyOffloaded(to: out, offload: &offload, progress: paced)
            } else {
                try copy(to: out, sparse: true, progress: paced)
            }
        }
        return offload
    }

    /// Disk writeback is started behind the copy every `writebackStep` bytes, so the final
    /// flush does not have to write the whole output at once (it took most of a convert's
    /// time on ext4, after the copy instead of beside it).
    static let writebackStep: UInt64 = 64 << 20

    /// `progress`, also starting writeback of the output up to where the copy has got.
    static func startingWriteback(of out: FileStorage, progress: Progress?) -> Progress {
        var started: UInt64 = 0
        return { done, total in
            if done >= started + writebackStep || (done == total && done > started) {
                out.startWriteback(offset: started, length: done - started)
                started = done
            }
            progress?(done, total)
        }
    }

    /// Each data extent goes from its layer's file to the output with `CopyOffload` (the
    /// output is new and truncated to size, so everything else already reads as zeros).
    func copyOffloaded(to out: FileStorage, offload: inout CopyOffload, progress: Progress?) throws(VHDXError) {
        _ = try DataExtentCopier.copy(source, to: out, place: { (v, n) throws(VHDXError) in [(v, v, n)] }, offload: &offload, progress: progress)
    }

    /// Writes every byte, zeros included, to a stream (stdout).
    package func write(toDescriptor fd: Int32, progress: Progress? = nil) throws(VHDXError) {
        let sink = StreamSink(fd: fd)
        try copy(to: sink, sparse: false, progress: progress)
    }

    func copy(to out: Storage, sparse: Bool, progress: Progress?) throws(VHDXError) {
        let total = source.virtualSize
        var zeros: [UInt8] = []
        // Resolved through the chain: only extents some layer holds data for are read, straight
        // from that layer's file (no second walk down the chain per block), joined into as few
        // preads as the layers allow.
        try source.forEachChunk(size: RawConverter.chunk) { (offset, length, bytes) throws(VHDXError) in
            if let bytes {
                if sparse { try RawConverter.writeNonZeroRuns(out, bytes, at: offset) } else { try out.write(bytes, at: offset) }
            } else if !sparse {
                if zeros.isEmpty { zeros = [UInt8](repeating: 0, count: RawConverter.chunk) }
                try RawConverter.writeZeros(out, from: offset, count: length, buffer: &zeros)
            }
            progress?(offset + length, total)
        }
    }

    /// Writes only the 4 KiB granules that hold a non-zero byte, coalescing neighbours.
    package static func writeNonZeroRuns(_ out: Storage, _ b: UnsafeRawBufferPointer, at v: UInt64) throws(VHDXError) {
        let g = RawConverter.zeroGranule
        var runStart: Int? = nil
        var i = 0
        while i < b.count {
            let n = min(g, b.count - i)
            let zero = isAllZero(UnsafeRawBufferPointer(rebasing: b[i..<i + n]))
            if !zero && runStart == nil { runStart = i }
            if zero, let s = runStart {
                try out.write(UnsafeRawBufferPointer(rebasing: b[s..<i]), at: v + UInt64(s))
                runStart = nil
            }
            i += n
        }
        if let s = runStart { try out.write(UnsafeRawBufferPointer(rebasing: b[s..<b.count]), at: v + UInt64(s)) }
    }

    static func writeZeros(_ out: Storage, from v: UInt64, count: UInt64, buffer: inout [UInt8]) throws(VHDXError) {
        var left = count
        var at = v
        try typed { try buffer.withUnsafeMutableBytes { b in
            // Clear only what this run writes: a fragmented chain has many short zero runs.
            UnsafeMutableRawBufferPointer(rebasing: b[0..<Int(min(UInt64(b.count), count))]).zeroFill()
            while left > 0 {
                let n = Int(min(UInt64(b.count), left))
                try out.write(UnsafeRawBufferPointer(rebasing: b[0..<n]), at: at)
                left -= UInt64(n)
                at += UInt64(n)
            }
        } }
    }
}

/// `dir/.name.tmp-<pid>-<random>` beside `path`, so the final rename stays on one filesystem.
package func temporaryPath(for path: String) -> String {
    let slash = path.lastIndex(of: "/")
    let dir = slash.map { String(path[...$0]) } ?? ""
    let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
    return "\(dir).\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
}

/// A forward-only sink (a pipe or terminal) seen as storage; offsets must arrive in order.
final class StreamSink: Storage {
    let fd: Int32
    var position: UInt64 = 0
    init(fd: Int32) { self.fd = fd }
    var isWritable: Bool { true }
    var name: String { "<stdout>" }
    func size() throws(VHDXError) -> UInt64 { position }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        throw VHDXError(.invalidArgument, "a stream cannot be read back")
    }
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        precondition(offset == position, "stream writes must be sequential")
        try FileSystem.writeStream(fd, buffer, path: name, what: "write to output failed")
        position += UInt64(buffer.count)
    }
    func resize(to size: UInt64) throws(VHDXError) {}
    func synchronize() throws(VHDXError) {}
}
