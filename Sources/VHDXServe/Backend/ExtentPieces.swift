/// Block-status extents are u32 lengths: a run longer than that is told in pieces, each a
/// multiple of the disk's minimum block size (so every piece starts and ends on a sector).
struct ExtentPieces {
    /// The longest piece: the largest multiple of `alignment` that fits in a u32.
    let maxPiece: UInt64
    let maxExtents: Int
    private(set) var extents: [BlockStatusExtent] = []
    /// Bytes covered so far.
    private(set) var covered: UInt64 = 0

    init(alignment: UInt32, maxExtents: Int) {
        let a = UInt64(max(alignment, 1))
        maxPiece = UInt64(UInt32.max) / a * a
        self.maxExtents = max(maxExtents, 1)
    }

    var isFull: Bool { extents.count >= maxExtents }

    /// Appends `length` bytes with `flags`, merged with the previous extent when equal and it
    /// fits; returns false once `maxExtents` is reached (the rest is not told).
    @discardableResult
    mutating func append(_ length: UInt64, flags: UInt32) -> Bool {
        var left = length
        while left > 0 {
            if let last = extents.last, last.flags == flags, UInt64(last.length) < maxPiece {
                let n = min(left, maxPiece - UInt64(last.length))
                extents[extents.count - 1].length += UInt32(n)
                left -= n
                covered += n
                continue
            }
            guard !isFull else { return false }
            let n = min(left, maxPiece)
            extents.append(BlockStatusExtent(length: UInt32(n), flags: flags))
            left -= n
            covered += n
        }
        return true
    }
}
