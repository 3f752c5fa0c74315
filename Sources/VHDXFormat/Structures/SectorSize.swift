/// Logical Sector Size ([MS-VHDX] 2.6.2.4) and Physical Sector Size (2.6.2.5) metadata items;
/// 4 bytes each, value 512 or 4096. One type serves both: they share layout and rule.
public struct SectorSize: Equatable, Sendable {
    public static let encodedSize = 4
    public var bytes: UInt32

    public init(_ bytes: UInt32) { self.bytes = bytes }

    public init(parsing r: inout ByteReader, item: String) throws(FormatError) {
        let at = r.fileOffset
        bytes = try r.readUInt32(item)
        guard bytes == 512 || bytes == 4096 else {
            throw FormatError(.outOfRange, item, at: at, "\(bytes); must be 512 or 4096")
        }
    }

    public func encode(into w: inout ByteWriter) { w.write(bytes) }
}
