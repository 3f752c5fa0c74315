import VHDXFormat

/// One sealed epoch kept in the history: the granules changed between the seal before it and
/// its own, stored as a run list in `slot` (TRACKING-FORMAT.md §3).
public struct EpochRecord: Equatable, Sendable {
    public static let encodedSize = 48
    public var epoch: UInt64
    /// Seconds since 1970 when it was sealed.
    public var sealTime: UInt64
    /// The virtual size when it was sealed.
    public var virtualSize: UInt64
    public var slot: UInt32
    public var runCount: UInt32
    /// CRC-32C of the run list's bytes (runCount × 16).
    public var checksum: UInt32
    /// Bit 0: the list was coarsened to fit its slot (it covers more than was written).
    public var flags: UInt32
    /// The seal's random tag, part of the epoch's change ID (0: sealed before tags existed).
    public var tag: UInt64

    public var coarsened: Bool { flags & 1 != 0 }

    public init(epoch: UInt64, sealTime: UInt64, virtualSize: UInt64, slot: UInt32, runCount: UInt32, checksum: UInt32, flags: UInt32, tag: UInt64 = 0) {
        self.epoch = epoch
        self.sealTime = sealTime
        self.virtualSize = virtualSize
        self.slot = slot
        self.runCount = runCount
        self.checksum = checksum
        self.flags = flags
        self.tag = tag
    }

    init(parsing r: inout ByteReader) throws(FormatError) {
        epoch = try r.readUInt64("epoch")
        sealTime = try r.readUInt64("sealTime")
        virtualSize = try r.readUInt64("virtualSize")
        slot = try r.readUInt32("slot")
        runCount = try r.readUInt32("runCount")
        checksum = try r.readUInt32("checksum")
        flags = try r.readUInt32("flags")
        tag = try r.readUInt64("tag")
    }

    func encode(into w: inout ByteWriter) {
        w.write(epoch)
        w.write(sealTime)
        w.write(virtualSize)
        w.write(slot)
        w.write(runCount)
        w.write(checksum)
        w.write(flags)
        w.write(tag)
    }
}
