/// The k-way merge at the heart of `vhdx consolidate`: walks the virtual disk of the chain's
/// last export from 0 to its end and says, range by range, which input's record holds the
/// bytes a restore of the chain would leave there, reading every input front to back in step.
///
/// What a restore leaves at a byte x below the final size (Restorer.fromStreams): the newest
/// stream k with a record covering x wins, but only if x stayed on the disk ever since — below
/// the size of k and of every later stream, since a shrink zeroes what it cuts and a disk that
/// grows back reads zeros there. So stream k is visible on [0, visibleEnd[k]), visibleEnd[k] =
/// min(size[k…n]); where no visible record covers x, the disk reads zeros (a grown area nobody
/// wrote). Records beyond their stream's visible end are still read (and checked) but never win.
///
/// Every record read is reported (`Event.read`) exactly once, before any piece taken from it,
/// so the caller checks all of them in order; a piece is a range and the record it comes from
/// (nil for zeros). Memory: one current record per input.
struct ChainSweep {
    enum Event {
        /// A record just read from input `stream` (every record of every input, once).
        case read(stream: Int, RawRecord)
        /// The next range of the result, from `source` (nil: zeros).
        case piece(Piece)
    }

    struct Piece {
        var offset: UInt64
        var length: UInt64
        /// The data record the bytes come from, and its input; nil: the range reads as zeros.
        var source: (stream: Int, record: RawRecord)?
        var end: UInt64 { offset + length }
    }

    let sizes: [UInt64]
    let visibleEnd: [UInt64]
    var finalSize: UInt64 { sizes.last! }
    private let pull: (Int) throws -> RawRecord?
    private var current: [RawRecord?]
    private var exhausted: [Bool]
    private(set) var position: UInt64 = 0
    private var pending: [Event] = []
    private var draining = 0

    /// `sizes[k]`: input k's virtual size; `pull(k)`: input k's next data or zero record, nil
    /// once its trailer was read and checked.
    init(sizes: [UInt64], pull: @escaping (Int) throws -> RawRecord?) {
        precondition(!sizes.isEmpty)
        self.sizes = sizes
        var ends = sizes
        for k in stride(from: sizes.count - 2, through: 0, by: -1) { ends[k] = min(sizes[k], ends[k + 1]) }
        visibleEnd = ends
        self.pull = pull
        current = Array(repeating: nil, count: sizes.count)
        exhausted = Array(repeating: false, count: sizes.count)
    }

    /// The next event, nil when the result is complete and every input was read to its end.
    mutating func next() throws -> Event? {
        while pending.isEmpty {
            if position < finalSize {
                try advance()
            } else {
                // The result is complete: what is left of each input is read (and checked) too.
                guard draining < sizes.count else { return nil }
                if exhausted[draining] { draining += 1; continue }
                try read(draining)
            }
        }
        return pending.removeFirst()
    }

    private mutating func read(_ k: Int) throws {
        if let r = try pull(k) {
            current[k] = r
            pending.append(.read(stream: k, r))
        } else {
            current[k] = nil
            exhausted[k] = true
        }
    }

    private func end(_ r: RawRecord) -> UInt64 { r.header.offset + r.header.length }

    /// Reads what the range at `position` needs, then emits it (or the records it read first).
    private mutating func advance() throws {
        let p = position
        // Each visible input's current record must end after p (earlier ones are passed).
        for k in sizes.indices where !exhausted[k] && p < visibleEnd[k] {
            if current[k] == nil || end(current[k]!) <= p {
                try read(k)
                if !pending.isEmpty { return }  // report it first; come back for the rest
            }
        }
        var winner: Int?
        for k in sizes.indices.reversed() where p < visibleEnd[k] {
            if let r = current[k], r.header.offset <= p, p < end(r) { winner = k; break }
        }
        var q = finalSize
        if let w = winner {
            q = min(end(current[w]!), visibleEnd[w])
        }
        // A newer input's next record starting inside the range cuts it there (a winner's older
        // inputs do not matter; without a winner, every input's next record does).
        for j in sizes.indices where j > (winner ?? -1) && p < visibleEnd[j] {
            if let r = current[j], r.header.offset > p, r.header.offset < visibleEnd[j] { q = min(q, r.header.offset) }
        }
        precondition(q > p, "the sweep must move forward")
        var source: (stream: Int, record: RawRecord)?
        if let w = winner, let r = current[w], r.header.kind == .data { source = (w, r) }
        pending.append(.piece(Piece(offset: p, length: q - p, source: source)))
        position = q
    }
}
