/// Turns the sweep's pieces (any boundaries) into the records of a full stream with digest
/// block D (EXPORT-FORMAT.md §4): each starting on a multiple of D, a whole number of D-byte
/// blocks except the last at the disk's end, data records at most 16 D and 64 MiB long.
///
/// Pieces from inputs with the same D start and end on its multiples, except at a stream's own
/// end; a shrink followed by a grow that no later record covers, or an input with another D,
/// can put a boundary inside a block. Such a block is built from its pieces (`Part`s) as one
/// data record. A data record taken whole, with the same D, is copied as it is (`copy`: its
/// digests and payload, compressed or not, and its body CRC unchanged).
struct RecordAssembler {
    /// A range of an output record and where its bytes come from.
    struct Part: Sendable {
        var offset: UInt64
        var length: UInt64
        /// nil: zeros.
        var source: RawRecord?
        /// The source's digest block (its stream's).
        var sourceDigestBlock: UInt64
        var end: UInt64 { offset + length }
    }

    /// One record of the result.
    enum Spec: Sendable {
        case zero(offset: UInt64, length: UInt64)
        /// An input's data record, unchanged but for its number and stream id.
        case copy(RawRecord)
        /// A data record made of parts (slices of input records, zeros).
        case build(offset: UInt64, length: UInt64, parts: [Part])
    }

    let digestBlock: UInt64
    let finalSize: UInt64
    /// The largest data record (EXPORT-FORMAT.md §4).
    var maxDataLength: UInt64 { min(16 * digestBlock, 64 << 20) }
    /// The stream's digest block of each input.
    let inputDigestBlocks: [UInt64]

    private var zeroRun: (offset: UInt64, length: UInt64)?
    private var partial: [Part] = []
    private var out: [Spec] = []

    init(digestBlock: UInt64, finalSize: UInt64, inputDigestBlocks: [UInt64]) {
        self.digestBlock = digestBlock
        self.finalSize = finalSize
        self.inputDigestBlocks = inputDigestBlocks
    }

    private func aligned(_ x: UInt64) -> Bool { x % digestBlock == 0 || x == finalSize }

    /// Adds the next piece (they come in order, without gaps); returns the records completed.
    mutating func add(_ piece: ChainSweep.Piece) -> [Spec] {
        var a = piece.offset
        let b = piece.end
        let source = piece.source.map(\.record)
        let d = piece.source.map { inputDigestBlocks[$0.stream] } ?? digestBlock
        // A block begun by earlier pieces is completed first.
        if !partial.isEmpty {
            let e = min(b, (a / digestBlock + 1) * digestBlock, finalSize)
            partial.append(Part(offset: a, length: e - a, source: source, sourceDigestBlock: d))
            if aligned(e) { flushPartial() }
            a = e
        }
        if a < b {
            let mid = b == finalSize ? b : b / digestBlock * digestBlock
            if mid > a { whole(a, mid, source: source, sourceDigestBlock: d) }
            if mid < b {
                flushZeros()
                partial = [Part(offset: mid, length: b - mid, source: source, sourceDigestBlock: d)]
            }
        }
        defer { out = [] }
        return out
    }

    /// The records still held back; call once the last piece (ending at the final size) is in.
    mutating func finish() -> [Spec] {
        precondition(partial.isEmpty, "the last piece ends at the disk's end")
        flushZeros()
        defer { out = [] }
        return out
    }

    /// [a, b), both on block boundaries (or b the disk's end), from one source.
    private mutating func whole(_ a: UInt64, _ b: UInt64, source: RawRecord?, sourceDigestBlock d: UInt64) {
        guard let r = source else {
            if let z = zeroRun, z.offset + z.length == a { zeroRun!.length += b - a } else {
                flushZeros()
                zeroRun = (a, b - a)
            }
            return
        }
        flushZeros()
        if a == r.header.offset, b == r.header.offset + r.header.length, d == digestBlock, b - a <= maxDataLength {
            out.append(.copy(r))
            return
        }
        var at = a
        while at < b {
            let n = min(b - at, maxDataLength)
            out.append(.build(offset: at, length: n, parts: [Part(offset: at, length: n, source: r, sourceDigestBlock: d)]))
            at += n
        }
    }

    private mutating func flushZeros() {
        if let z = zeroRun { out.append(.zero(offset: z.offset, length: z.length)) }
        zeroRun = nil
    }

    private mutating func flushPartial() {
        flushZeros()
        let start = partial[0].offset, end = partial[partial.count - 1].end
        // A block wholly zeros stays a zero record.
        if partial.allSatisfy({ $0.source == nil }) { zeroRun = (start, end - start) } else {
            out.append(.build(offset: start, length: end - start, parts: partial))
        }
        partial = []
    }
}
