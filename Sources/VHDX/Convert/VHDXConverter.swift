#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDXFormat

/// Converts any disk (raw or VHDX) into a new VHDX: unallocated source ranges are never read,
/// blocks that read as all zeros stay unallocated (dynamic) or sparse (fixed), and within a
/// written block every 4 KiB run of zeros is left as a hole. The image is built as a temporary
/// file with no log traffic (it is invisible until complete), flushed, then renamed into place.
package struct VHDXConverter {
    package typealias Progress = (_ done: UInt64, _ total: UInt64) -> Void
    package let source: DiskImage
    package var options: CreateOptions
    // 256 KiB: larger writes made the kernel fault in big page-cache pages and ran 3x slower here.
    static let piece = 256 << 10

    /// `options.virtualSize` is set from the source, rounded up to a whole logical sector.
    package init(source: DiskImage, options: CreateOptions) {
        self.source = source
        var o = options
        let lss = UInt64(o.logicalSectorSize)
        o.virtualSize = max(lss, (source.virtualSize + lss - 1) / lss * lss)
        if let v = source.vhdx, o.virtualDiskID == options.virtualDiskID { o.virtualDiskID = v.layout.virtualDiskID }
        self.options = o
    }

    /// A `path` that is the source or one of its parents is refused before anything is written.
    package func write(toPath path: String, overwrite: Bool = true, progress: Progress? = nil) throws(VHDXError) {
        try refuseOverwritingInput(path, inputs: source.vhdx.map { $0.chain.map { $0.storage.name } } ?? [source.path])
        try writeAtomically(path, overwrite: overwrite) { (out) throws(VHDXError) in try convert(into: out, progress: progress) }
    }

    /// Builds the image on empty storage.
    package func convert(into out: Storage, progress: Progress? = nil) throws(VHDXError) {
        let plan = try PlannedLayout(options)
        let builder = ImageBuilder(storage: out, options: options, plan: plan)
        try builder.writeStructures()
        let g = plan.geometry
        var next = plan.payloadStart
        var allocated: [(UInt64, UInt64)] = []  // (BAT index, file offset), in index order
        var buffer = [UInt8](repeating: 0, count: min(VHDXConverter.piece, Int(g.blockSize)))
        for block in 0..<g.dataBlockCount {
            let start = block * g.blockSize
            let end = min(start + g.blockSize, options.virtualSize)
            var fileOffset: UInt64? = options.fixed ? plan.payloadStart + block * g.blockSize : nil
            var v = start
            while v < end {
                let sourceEnd = min(end, source.virtualSize)
                guard v < sourceEnd else { break }
                let run = try source.allocationRun(at: v)
                let runEnd = min(run.range.upperBound, sourceEnd)
                guard run.allocated else { v = runEnd; continue }
                while v < runEnd {
                    let n = Int(min(UInt64(buffer.count), runEnd - v))
                    try typed { try buffer.withUnsafeMutableBytes { b in
                        let chunk = UnsafeMutableRawBufferPointer(rebasing: b[0..<n])
                        try source.read(into: chunk, at: v)
                        try writeNonZero(UnsafeRawBufferPointer(chunk), blockOffset: v - start, into: out, fileOffset: &fileOffset) {
                            let at = next
                            next += g.blockSize
                            return at
                        }
                    } }
                    v += UInt64(n)
                }
            }
            if let f = fileOffset, !options.fixed { allocated.append((g.payloadIndex(block: block), f)) }
            progress?(end, options.virtualSize)
        }
        var cursor = 0
        try builder.writeBAT { (i) throws(VHDXError) -> BATEntry in
            let (isSB, block) = g.classify(index: i)
            if options.fixed {
                guard !isSB, block < g.dataBlockCount else { return .notPresent }
                return try .dataBlock(at: plan.payloadStart + block * g.blockSize)
            }
            guard cursor < allocated.count, allocated[cursor].0 == i else { return .notPresent }
            cursor += 1
            return try .dataBlock(at: allocated[cursor - 1].1)
        }
        try out.resize(to: options.fixed ? plan.payloadStart + g.dataBlockCount * g.blockSize : max(next, plan.payloadStart))
    }

    /// Writes the 4 KiB granules of `chunk` that hold data, allocating the block on the first.
    private func writeNonZero(_ chunk: UnsafeRawBufferPointer, blockOffset: UInt64, into out: Storage,
                              fileOffset: inout UInt64?, allocate: () -> UInt64) throws(VHDXError) {
        let g = 4096
        var runStart: Int?
        var i = 0
        func flush(_ s: Int, _ e: Int) throws(VHDXError) {
            let block = fileOffset ?? allocate()
            fileOffset = block
            try out.write(UnsafeRawBufferPointer(rebasing: chunk[s..<e]), at: block + blockOffset + UInt64(s))
        }
        while i < chunk.count {
            let n = min(g, chunk.count - i)
            let zero = isAllZero(UnsafeRawBufferPointer(rebasing: chunk[i..<i + n]))
            if !zero && runStart == nil { runStart = i }
            if zero, let s = runStart { try flush(s, i); runStart = nil }
            i += n
        }
        if let s = runStart { try flush(s, chunk.count) }
    }
}
