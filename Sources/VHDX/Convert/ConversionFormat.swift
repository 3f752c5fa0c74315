/// What ``DiskImage/convert(to:format:overwrite:progress:)`` writes.
public enum ConversionFormat: Sendable, Equatable {
    /// A raw disk image: the disk's bytes at their offsets, sparse (every run of zeros a hole).
    case raw
    /// A new VHDX image laid out as the options say.
    case vhdx(VHDXConversionOptions)
}

/// The layout of a VHDX that a conversion writes. The defaults are Hyper-V's New-VHD ones (a
/// dynamic disk, 32 MiB blocks), with the source's sector sizes.
public struct VHDXConversionOptions: Sendable, Equatable {
    /// Allocate every block (a fixed disk); otherwise blocks that read as zeros stay unallocated.
    public var fixed: Bool
    /// A power of two from 1 MiB to 256 MiB.
    public var blockSize: UInt32
    /// 512 or 4096; nil: the source's when it is a VHDX, else 512.
    public var logicalSectorSize: UInt32?
    /// 512 or 4096; nil: the source's when it is a VHDX, else 4096.
    public var physicalSectorSize: UInt32?

    public init(fixed: Bool = false, blockSize: UInt32 = 32 << 20, logicalSectorSize: UInt32? = nil, physicalSectorSize: UInt32? = nil) {
        self.fixed = fixed
        self.blockSize = blockSize
        self.logicalSectorSize = logicalSectorSize
        self.physicalSectorSize = physicalSectorSize
    }

    /// The creation options for a copy of `source`: its size (rounded up to a whole logical
    /// sector by the converter), its sector sizes unless given, its virtual disk ID when it is a
    /// VHDX (the converter keeps it).
    func createOptions(for source: DiskImage) -> CreateOptions {
        var o = CreateOptions(virtualSize: source.virtualSize)
        o.fixed = fixed
        o.blockSize = blockSize
        o.logicalSectorSize = logicalSectorSize ?? source.vhdx?.logicalSectorSize ?? 512
        o.physicalSectorSize = physicalSectorSize ?? source.vhdx?.physicalSectorSize ?? 4096
        return o
    }
}
