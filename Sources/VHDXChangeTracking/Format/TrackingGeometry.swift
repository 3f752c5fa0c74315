import VHDXFormat

/// Where everything lies inside the tracking region, and how big it is. All offsets are
/// relative to the region's start; every structure is a whole number of 4 KiB pages, since
/// the log updates 4 KiB pages (TRACKING-FORMAT.md §2).
public struct TrackingGeometry: Equatable, Sendable {
    public static let pageSize = 4096
    /// Bits of the coarse map (one page).
    public static let coarseBits: UInt64 = 32768
    public static let headerOffset: UInt64 = 0
    public static let coarseOffset: UInt64 = 4096
    public static let slotsOffset: UInt64 = 8192
    public static let defaultGranule: UInt64 = 64 << 10
    public static let defaultHistory: UInt32 = 16
    public static let maxHistory: UInt32 = 64
    /// Slot capacity per TiB of virtual disk: 64 pages (16,384 runs, 256 KiB).
    public static let slotPagesPerTiB: UInt64 = 64
    public static let minSlotPages: UInt32 = 16

    public var granule: UInt64
    public var historyLimit: UInt32
    public var slotPages: UInt32

    public init(granule: UInt64, historyLimit: UInt32, slotPages: UInt32) {
        self.granule = granule
        self.historyLimit = historyLimit
        self.slotPages = slotPages
    }

    /// The geometry for a new region: slots sized for `virtualSize`.
    public init(granule: UInt64, historyLimit: UInt32, virtualSize: UInt64) {
        let perPage: UInt64 = (1 << 40) / TrackingGeometry.slotPagesPerTiB  // 16 GiB of disk per slot page
        let pages = max(UInt64(TrackingGeometry.minSlotPages), (min(virtualSize, UInt64(64) << 40) + perPage - 1) / perPage)
        self.init(granule: granule, historyLimit: historyLimit, slotPages: UInt32(pages))
    }

    /// History records kept, plus the current epoch's persisted set, plus one spare, so a
    /// new set is always written to a free slot before the header switches to it.
    public var slotCount: UInt32 { historyLimit + 2 }
    /// Bytes a slot holds.
    public var slotBytes: Int { Int(slotPages) * TrackingGeometry.pageSize }
    public func slotOffset(_ slot: UInt32) -> UInt64 {
        TrackingGeometry.slotsOffset + UInt64(slot) * UInt64(slotPages) * UInt64(TrackingGeometry.pageSize)
    }
    /// The region's length, rounded up to 1 MiB as region table entries require.
    public var regionLength: UInt64 {
        let end = slotOffset(slotCount)
        return ((end + (1 << 20) - 1) >> 20) << 20
    }

    /// Bytes of virtual disk per coarse-map bit: the smallest power of two (at least one
    /// granule) that lets 32,768 bits cover `virtualSize`.
    public func coarseUnit(virtualSize: UInt64) -> UInt64 {
        var unit = granule
        while unit * TrackingGeometry.coarseBits < virtualSize { unit <<= 1 }
        return unit
    }

    /// Checks a geometry read from a file (or asked for by a user) against `blockSize` and the
    /// logical sector size: every count bounded, the granule a power of two between them.
    public func validate(logicalSectorSize: UInt64, blockSize: UInt64) -> String? {
        guard granule.nonzeroBitCount == 1, granule >= logicalSectorSize, granule <= blockSize else {
            return "granule \(granule) is not a power of two between the logical sector size (\(logicalSectorSize)) and the block size (\(blockSize))"
        }
        guard historyLimit >= 1, historyLimit <= TrackingGeometry.maxHistory else {
            return "history \(historyLimit) is outside 1...\(TrackingGeometry.maxHistory)"
        }
        guard slotPages >= TrackingGeometry.minSlotPages, UInt64(slotPages) <= 64 * TrackingGeometry.slotPagesPerTiB else {
            return "slot size \(slotPages) pages is outside \(TrackingGeometry.minSlotPages)...\(64 * TrackingGeometry.slotPagesPerTiB)"
        }
        return nil
    }
}
