/// Region table entry, [MS-VHDX] 2.2.3.2; 32 bytes.
///
/// | Off | Size | Field      | Rule                                         |
/// |-----|------|------------|----------------------------------------------|
/// | 0   | 16   | Guid       | region type, unique in the table             |
/// | 16  | 8    | FileOffset | multiple of 1 MiB, >= 1 MiB                  |
/// | 24  | 4    | Length     | multiple of 1 MiB                            |
/// | 28  | 4    | Required   | bit 0: a reader must know this region; bits 1-31 reserved |
public struct RegionTableEntry: Equatable, Sendable {
    public static let encodedSize = 32
    public var guid: GUID
    public var fileOffset: UInt64
    public var length: UInt32
    public var flags: UInt32

    public var isRequired: Bool { flags & 1 != 0 }
    public var end: UInt64 { fileOffset &+ UInt64(length) }

    public init(guid: GUID, fileOffset: UInt64, length: UInt32, required: Bool) {
        self.guid = guid
        self.fileOffset = fileOffset
        self.length = length
        self.flags = required ? 1 : 0
    }

    public init(parsing r: inout ByteReader) throws(FormatError) {
        guid = try r.readGUID("guid")
        fileOffset = try r.readUInt64("fileOffset")
        length = try r.readUInt32("length")
        flags = try r.readUInt32("required")
    }

    public func encode(into w: inout ByteWriter) {
        w.write(guid)
        w.write(fileOffset)
        w.write(length)
        w.write(flags)
    }
}
