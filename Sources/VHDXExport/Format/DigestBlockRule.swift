/// The digest block D of a stream (EXPORT-FORMAT.md §3): the one rule the exporter picks D by
/// and every reader (stream header, an image's origin record) checks it against, so a writer
/// never makes a header its own reader refuses.
package enum DigestBlockRule {
    /// The largest disk a stream may describe: 64 TiB, the VHDX limit.
    package static let maxVirtualSize: UInt64 = 64 << 40
    /// Most digest blocks a disk may have: what a reader keeps per range (verify's covered
    /// ranges, a record's digests) is bounded by it.
    package static let maxBlocks: UInt64 = 1 << 22
    /// Largest D: the largest disk in `maxBlocks` blocks (16 MiB).
    package static let largest: UInt64 = maxVirtualSize / maxBlocks
    /// What an export aims for while D stays at most `preferredLargest`: at most 2^20 blocks,
    /// small blocks (a change costs a block) with a bounded count.
    package static let preferredBlocks: UInt64 = 1 << 20
    package static let preferredLargest: UInt64 = 4 << 20

    /// How many D-byte blocks a disk of `virtualSize` bytes has (the last may be shorter).
    package static func blocks(_ d: UInt64, virtualSize: UInt64) -> UInt64 {
        virtualSize / d + (virtualSize % d == 0 ? 0 : 1)
    }

    /// Why `d` cannot be the digest block of a disk of `virtualSize` bytes with
    /// `sectorSize`-byte logical sectors, or nil when it can.
    package static func problem(_ d: UInt64, virtualSize: UInt64, sectorSize: UInt32) -> String? {
        guard d.nonzeroBitCount == 1, d >= UInt64(sectorSize), d <= largest else {
            return "\(d) is not a power of two from the \(sectorSize)-byte sector to \(largest)"
        }
        let n = blocks(d, virtualSize: virtualSize)
        guard n <= maxBlocks else {
            return "\(d) gives the \(virtualSize)-byte disk \(n) digest blocks, more than \(maxBlocks)"
        }
        return nil
    }

    /// The digest block an export picks: the tracking granule (so changed ranges are whole
    /// blocks; at least 4 KiB and the sector, at most `preferredLargest`), doubled until the disk
    /// has at most 2^20 of them or D reaches 4 MiB, then further until it has at most 2^22.
    /// `problem` accepts it for every disk up to `maxVirtualSize`.
    package static func choose(granule: UInt64, virtualSize: UInt64, sectorSize: UInt32) -> UInt64 {
        var d = max(4096, UInt64(sectorSize))
        while d < min(granule, preferredLargest) { d *= 2 }
        while d < preferredLargest, blocks(d, virtualSize: virtualSize) > preferredBlocks { d *= 2 }
        while d < largest, blocks(d, virtualSize: virtualSize) > maxBlocks { d *= 2 }
        return d
    }
}
