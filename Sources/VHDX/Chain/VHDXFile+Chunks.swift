import VHDXFormat

extension VHDXFile {
    /// Streams the disk (through its chain) as pieces in offset order, each at most `size`
    /// bytes and holding data, or of any length and reading as zeros: `body(offset, length,
    /// bytes)` with `bytes == nil` for the latter, so a sparse 64 TiB disk is a handful of calls.
    /// One walk of the resolved extents; the data is read with `ExtentGather` into one reused
    /// buffer of `size` bytes (all the memory this takes).
    public func forEachChunk(size: Int, from start: UInt64 = 0, to end: UInt64? = nil,
                             _ body: (UInt64, UInt64, UnsafeRawBufferPointer?) throws(VHDXError) -> Void) throws(VHDXError) {
        precondition(size > 0, "chunk size must be positive")
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        defer { buffer.deallocate() }
        var gather = ExtentGather(into: buffer, layers: chain)
        var window = start    // where the pending piece starts
        var filled: UInt64 = 0 // its length so far
        var hasData = false

        func emit() throws(VHDXError) {
            guard filled > 0 else { return }
            if hasData {
                try gather.flush()
                try body(window, filled, UnsafeRawBufferPointer(rebasing: buffer[0..<Int(filled)]))
            } else {
                try body(window, filled, nil)
            }
            window += filled
            filled = 0
            hasData = false
        }

        try forEachResolvedExtent(from: start, to: end) { (e) throws(VHDXError) in
            var v = e.virtualOffset
            while v < e.end {
                if e.kind != .data && !hasData {
                    // Zeros after zeros: the piece grows without a buffer.
                    filled += e.end - v
                    return
                }
                if e.kind == .data && !hasData { try emit() }  // the zeros before this data
                let n = min(e.end - v, UInt64(size) - filled)
                if e.kind == .data {
                    try gather.data(layer: e.layer, fileOffset: e.fileOffset! + (v - e.virtualOffset), at: Int(filled), length: Int(n))
                    hasData = true
                } else {
                    gather.zeros(at: Int(filled), length: Int(n))
                }
                filled += n
                v += n
                if filled == UInt64(size) { try emit() }
            }
        }
        try emit()
    }
}
