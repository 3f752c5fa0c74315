import VHDXFormat

/// What a new image looks like. Defaults follow Windows (New-VHD): 32 MiB blocks, 512-byte
/// logical and 4096-byte physical sectors, a 1 MiB log, region entries marked required.
public struct CreateOptions: Sendable {
    /// The virtual disk's size in bytes: a multiple of the logical sector size, at most 64 TiB.
    public var virtualSize: UInt64
    /// Allocate every block now (a fixed disk) instead of on first write.
    public var fixed: Bool = false
    /// Payload block size: a power of two from 1 MiB to 256 MiB (default 32 MiB, as New-VHD).
    public var blockSize: UInt32 = 32 << 20
    /// 512 or 4096 (default 512).
    public var logicalSectorSize: UInt32 = 512
    /// 512 or 4096 (default 4096).
    public var physicalSectorSize: UInt32 = 4096
    /// Log size in bytes, a multiple of 1 MiB (default 1 MiB).
    public var logSize: UInt32 = 1 << 20
    /// The creator string written into the image.
    public var creator: String = "swift-vhdx"
    /// The disk's identity (default: a random GUID).
    public var virtualDiskID: GUID = .random()

    /// New-VHD's defaults for a disk of `virtualSize` bytes.
    public init(virtualSize: UInt64) { self.virtualSize = virtualSize }

    /// Checks every value against the format's rules before anything is written.
    public func validate() throws(VHDXError) {
        func bad(_ s: String) -> VHDXError { VHDXError(.invalidArgument, s) }
        guard blockSize >= Layout.minBlockSize, blockSize <= Layout.maxBlockSize, blockSize & (blockSize - 1) == 0 else {
            throw bad("block size \(blockSize) must be a power of two from 1 MiB to 256 MiB")
        }
        guard logicalSectorSize == 512 || logicalSectorSize == 4096 else { throw bad("logical sector size must be 512 or 4096") }
        guard physicalSectorSize == 512 || physicalSectorSize == 4096 else { throw bad("physical sector size must be 512 or 4096") }
        guard virtualSize > 0, virtualSize <= Layout.maxVirtualDiskSize else { throw bad("size \(virtualSize) must be between 1 byte and 64 TiB") }
        guard virtualSize % UInt64(logicalSectorSize) == 0 else {
            throw bad("size \(virtualSize) is not a multiple of the \(logicalSectorSize)-byte logical sector")
        }
        guard logSize >= 1 << 20, UInt64(logSize) % Layout.MiB == 0 else { throw bad("log size must be a multiple of 1 MiB, at least 1 MiB") }
    }
}

/// Where a new image's objects go: log at 1 MiB, metadata after it, the BAT after that, payload
/// blocks after the BAT (the order Windows uses).
struct PlannedLayout {
    let geometry: BATGeometry
    let logOffset: UInt64
    let logLength: UInt32
    let metadataOffset: UInt64
    let metadataLength: UInt32 = 1 << 20
    let batOffset: UInt64
    let batLength: UInt32
    let payloadStart: UInt64

    init(_ o: CreateOptions, hasParent: Bool = false) throws(VHDXError) {
        try o.validate()
        geometry = BATGeometry(virtualDiskSize: o.virtualSize, blockSize: o.blockSize, logicalSectorSize: o.logicalSectorSize, hasParent: hasParent)
        logOffset = Layout.MiB
        logLength = o.logSize
        metadataOffset = logOffset + UInt64(o.logSize)
        batOffset = metadataOffset + Layout.MiB
        let batBytes = geometry.minimumTableBytes.roundedUp(to: Layout.MiB) ?? Layout.MiB
        guard batBytes <= UInt64(UInt32.max) / Layout.MiB * Layout.MiB else {
            throw VHDXError(.invalidArgument, "the BAT would need \(batBytes) bytes; use a larger block size")
        }
        batLength = UInt32(max(batBytes, Layout.MiB))
        payloadStart = batOffset + UInt64(batLength)
    }
}
