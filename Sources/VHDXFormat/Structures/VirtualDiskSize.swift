/// Virtual Disk Size metadata item, [MS-VHDX] 2.6.2.2; 8 bytes: a u64 byte count, a multiple of
/// the logical sector size, at most 64 TiB. The sector-size rule is checked where both are known.
public struct VirtualDiskSize: Equatable, Sendable {
    public static let encodedSize = 8
    public var bytes: UInt64

    public init(_ bytes: UInt64) { self.bytes = bytes }

    public init(parsing r: inout ByteReader) throws(FormatError) {
        let at = r.fileOffset
        bytes = try r.readUInt64("virtualDiskSize")
        guard bytes > 0, bytes <= Layout.maxVirtualDiskSize else {
            throw FormatError(.outOfRange, "virtual disk size", field: "virtualDiskSize", at: at,
                              "\(bytes) bytes; must be between 1 and 64 TiB")
        }
    }

    public func encode(into w: inout ByteWriter) { w.write(bytes) }
}
