/// The BAT arithmetic of [MS-VHDX] 2.5 (docs/vhdx-format.md §3): chunk ratio, interleaving of
/// sector-bitmap entries after every ChunkRatio payload entries, and the table's entry count.
/// All inputs are validated by the caller's parsers (block size, sector size, disk size), and
/// every derived value fits comfortably in UInt64 for disks up to 64 TiB.
public struct BATGeometry: Equatable, Sendable {
    public let virtualDiskSize: UInt64
    public let blockSize: UInt64
    public let logicalSectorSize: UInt64
    public let hasParent: Bool

    public init(virtualDiskSize: UInt64, blockSize: UInt32, logicalSectorSize: UInt32, hasParent: Bool) {
        self.virtualDiskSize = virtualDiskSize
        self.blockSize = UInt64(blockSize)
        self.logicalSectorSize = UInt64(logicalSectorSize)
        self.hasParent = hasParent
    }

    /// Payload blocks per chunk (= per sector bitmap block): 2^23 × LSS / BlockSize.
    public var chunkRatio: UInt64 { (UInt64(1) << 23) * logicalSectorSize / blockSize }
    public var sectorsPerBlock: UInt64 { blockSize / logicalSectorSize }
    public var dataBlockCount: UInt64 { (virtualDiskSize + blockSize - 1) / blockSize }
    public var sectorBitmapBlockCount: UInt64 { (dataBlockCount + chunkRatio - 1) / chunkRatio }

    /// Entries the table must hold: non-differencing files end at the last payload entry,
    /// differencing files at the last chunk's sector-bitmap entry.
    public var totalEntries: UInt64 {
        if hasParent { return sectorBitmapBlockCount * (chunkRatio + 1) }
        return dataBlockCount == 0 ? 0 : dataBlockCount + (dataBlockCount - 1) / chunkRatio
    }

    public var minimumTableBytes: UInt64 { totalEntries * 8 }

    public func payloadIndex(block b: UInt64) -> UInt64 { b + b / chunkRatio }
    public func sectorBitmapIndex(chunk c: UInt64) -> UInt64 { c * (chunkRatio + 1) + chunkRatio }

    /// Whether a BAT index holds a sector-bitmap entry, and the block or chunk number it maps.
    public func classify(index i: UInt64) -> (isSectorBitmap: Bool, number: UInt64) {
        let (chunk, slot) = i.quotientAndRemainder(dividingBy: chunkRatio + 1)
        if slot == chunkRatio { return (true, chunk) }
        return (false, chunk * chunkRatio + slot)
    }

    /// Byte offset, within the chunk's 1 MiB sector bitmap, of block b's slice; the slice is
    /// sectorsPerBlock / 8 bytes long.
    public func bitmapSliceOffset(block b: UInt64) -> UInt64 { (b % chunkRatio) * (sectorsPerBlock / 8) }
}
