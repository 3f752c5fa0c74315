/// File Parameters metadata item, [MS-VHDX] 2.6.2.1; 8 bytes.
///
/// | Off | Size | Field     | Rule                                                      |
/// |-----|------|-----------|-----------------------------------------------------------|
/// | 0   | 4    | BlockSize | power of 2, 1 MiB ... 256 MiB                             |
/// | 4   | 4    | Flags     | bit 0 LeaveBlockAllocated, bit 1 HasParent, bits 2-31 zero |
public struct FileParameters: Equatable, Sendable {
    public static let encodedSize = 8
    public var blockSize: UInt32
    public var flags: UInt32

    public var leaveBlockAllocated: Bool { flags & 1 != 0 }
    public var hasParent: Bool { flags & 2 != 0 }

    public init(blockSize: UInt32, leaveBlockAllocated: Bool, hasParent: Bool) {
        self.blockSize = blockSize
        self.flags = (leaveBlockAllocated ? 1 : 0) | (hasParent ? 2 : 0)
    }

    public init(parsing r: inout ByteReader) throws(FormatError) {
        let at = r.fileOffset
        blockSize = try r.readUInt32("blockSize")
        flags = try r.readUInt32("flags")
        guard blockSize >= Layout.minBlockSize, blockSize <= Layout.maxBlockSize, blockSize & (blockSize - 1) == 0 else {
            throw FormatError(.outOfRange, "file parameters", field: "blockSize", at: at,
                              "block size \(blockSize) is not a power of 2 between 1 MiB and 256 MiB")
        }
        guard flags & ~3 == 0 else {
            throw FormatError(.reservedNonZero, "file parameters", field: "flags", at: at + 4, "reserved flag bits 0x\(String(flags, radix: 16))")
        }
    }

    public func encode(into w: inout ByteWriter) {
        w.write(blockSize)
        w.write(flags)
    }
}
