/// Fixed offsets, sizes and limits of [MS-VHDX] (see docs/vhdx-format.md §1, §6).
public enum Layout {
    public static let KiB: UInt64 = 1024
    public static let MiB: UInt64 = 1024 * 1024
    public static let GiB: UInt64 = 1024 * MiB
    public static let TiB: UInt64 = 1024 * GiB

    /// The header section: file identifier, two headers, two region tables; 1 MiB in all.
    public static let headerSectionSize: UInt64 = MiB
    public static let fileIdentifierOffset: UInt64 = 0
    public static let headerOffsets: [UInt64] = [64 * KiB, 128 * KiB]
    public static let regionTableOffsets: [UInt64] = [192 * KiB, 256 * KiB]

    public static let headerSize = 4096
    public static let regionTableSize = 64 * 1024
    public static let metadataTableSize = 64 * 1024
    public static let logSectorSize = 4096

    /// Objects after the header section are placed on 1 MiB boundaries.
    public static let objectAlignment: UInt64 = MiB

    public static let maxVirtualDiskSize: UInt64 = 64 * TiB
    public static let minBlockSize: UInt32 = 1 << 20
    public static let maxBlockSize: UInt32 = 256 << 20
    public static let maxRegionEntries = 2047
    public static let maxMetadataEntries = 2047
    public static let maxUserMetadataEntries = 1024
    public static let maxMetadataItemLength: UInt32 = 1 << 20
    public static let sectorBitmapBlockSize: UInt64 = MiB
}

extension UInt64 {
    /// Whether the value is a multiple of `m` (m > 0).
    public func isMultiple(of m: UInt64, orZero: Bool = true) -> Bool { self % m == 0 && (orZero || self != 0) }

    /// Rounds up to a multiple of `m`, or nil on overflow.
    public func roundedUp(to m: UInt64) -> UInt64? {
        let (s, o) = addingReportingOverflow(m - 1)
        return o ? nil : s / m * m
    }
}
