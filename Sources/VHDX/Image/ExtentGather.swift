import VHDXFormat

/// Fills a buffer from resolved extents with as few preads as it can, straight into the buffer.
///
/// A fragmented chain resolves to hundreds of extents per block, and one pread each made a
/// depth-8 chain read 3.6x slower than its flattened image. Consecutive pieces of one layer
/// are joined into one read when the file maps them contiguously (same block) and every byte
/// between them belongs to a layer *above* (a smaller index) in this same batch: such a span
/// first reads the lower layer's stale bytes into those gaps, and the layers above, read after
/// it (deepest layer first), overwrite them. A gap held by a deeper layer or by zeros ends the
/// span, so no byte is ever left wrong. Nothing is buffered besides the caller's buffer, and
/// the list of spans is capped (a read of any size uses bounded memory).
struct ExtentGather {
    struct Span {
        var layer: Int
        var fileOffset: UInt64
        /// Where the span starts in the destination buffer.
        var at: Int
        var length: Int
    }
    /// A gap larger than this is not read through: copying it costs more than a pread saves.
    static let maxGap = 64 << 10
    static let maxSpans = 4096

    let buffer: UnsafeMutableRawBufferPointer
    let layers: [VHDXFile]
    let maxSpans: Int
    private var spans: [Span] = []
    /// Per layer: the index in `spans` of its span that may still grow, if any.
    private var open: [Int?]
    /// Whether any layer has an open span (saves the per-extent sweep when none has).
    private var anyOpen = false

    init(into buffer: UnsafeMutableRawBufferPointer, layers: [VHDXFile], maxSpans: Int = ExtentGather.maxSpans) {
        self.buffer = buffer
        self.layers = layers
        self.maxSpans = maxSpans
        self.open = Array(repeating: nil, count: layers.count)
        spans.reserveCapacity(64)
    }

    /// Bytes [at, at + length) of the buffer come from `layer`'s file at `fileOffset`.
    mutating func data(layer: Int, fileOffset: UInt64, at: Int, length: Int) throws(VHDXError) {
        // These bytes belong to `layer`: spans of layers above it may not cover them.
        close(above: layer)
        if let i = open[layer] {
            let s = spans[i]
            let gap = at - (s.at + s.length)
            if gap <= ExtentGather.maxGap, fileOffset >= s.fileOffset, fileOffset - s.fileOffset == UInt64(at - s.at) {
                spans[i].length = at + length - s.at
                return
            }
        }
        if spans.count >= maxSpans { try flush() }
        open[layer] = spans.count
        anyOpen = true
        spans.append(Span(layer: layer, fileOffset: fileOffset, at: at, length: length))
    }

    /// Bytes [at, at + length) read as zeros: written now, and no span may cover them.
    mutating func zeros(at: Int, length: Int) {
        close(above: open.count)
        UnsafeMutableRawBufferPointer(rebasing: buffer[at..<at + length]).zeroFill()
    }

    /// Reads every span, deepest layer first, so the layers above overwrite the gaps a
    /// lower span read through.
    mutating func flush() throws(VHDXError) {
        closeAll()
        guard !spans.isEmpty else { return }
        if spans.count > 1 { spans.sort { $0.layer != $1.layer ? $0.layer > $1.layer : $0.at < $1.at } }
        for s in spans {
            try layers[s.layer].readStored(into: UnsafeMutableRawBufferPointer(rebasing: buffer[s.at..<s.at + s.length]), at: s.fileOffset)
        }
        spans.removeAll(keepingCapacity: true)
    }

    /// Ends the open spans of layers 0..<limit (those above a byte held deeper).
    private mutating func close(above limit: Int) {
        guard anyOpen, limit > 0 else { return }
        var stillOpen = false
        for k in 0..<open.count where open[k] != nil {
            if k < limit { open[k] = nil } else { stillOpen = true }
        }
        anyOpen = stillOpen
    }

    private mutating func closeAll() {
        guard anyOpen else { return }
        for k in 0..<open.count { open[k] = nil }
        anyOpen = false
    }
}
