/// Copies a raw disk image to a raw file or stream: holes in the source (SEEK_HOLE) are never
/// read and stay holes, and all-zero 4 KiB pieces of written data become holes too, as
/// `RawConverter` does for VHDX sources.
package struct RawCopier {
    package typealias Progress = (_ done: UInt64, _ total: UInt64) -> Void
    package let source: DiskImage
    package init(source: DiskImage) { self.source = source }

    /// Through a temporary file renamed into place, like every other output.
    package func write(toPath path: String, overwrite: Bool = true, progress: Progress? = nil) throws(VHDXError) {
        try refuseOverwritingInput(path, inputs: [source.path])
        try writeAtomically(path, overwrite: overwrite) { (out) throws(VHDXError) in
            try out.resize(to: source.virtualSize)
            try copy(to: out, sparse: true, progress: progress)
        }
    }

    /// Every byte, zeros included, to a stream (stdout).
    package func write(toDescriptor fd: Int32, progress: Progress? = nil) throws(VHDXError) {
        try copy(to: StreamSink(fd: fd), sparse: false, progress: progress)
    }

    func copy(to out: Storage, sparse: Bool, progress: Progress?) throws(VHDXError) {
        let total = source.virtualSize
        var buffer = [UInt8](repeating: 0, count: RawConverter.chunk)
        try source.forEachAllocationRun { (run) throws(VHDXError) in
            if !run.allocated {
                if !sparse { try RawConverter.writeZeros(out, from: run.range.lowerBound, count: UInt64(run.range.count), buffer: &buffer) }
                progress?(run.range.upperBound, total)
                return
            }
            var v = run.range.lowerBound
            while v < run.range.upperBound {
                let n = Int(min(UInt64(buffer.count), run.range.upperBound - v))
                try typed { try buffer.withUnsafeMutableBytes { b in
                    let piece = UnsafeMutableRawBufferPointer(rebasing: b[0..<n])
                    try source.read(into: piece, at: v)
                    if sparse {
                        try RawConverter.writeNonZeroRuns(out, UnsafeRawBufferPointer(piece), at: v)
                    } else {
                        try out.write(UnsafeRawBufferPointer(piece), at: v)
                    }
                } }
                v += UInt64(n)
                progress?(v, total)
            }
        }
    }
}
