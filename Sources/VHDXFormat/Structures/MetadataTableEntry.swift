/// Metadata table entry, [MS-VHDX] 2.6.1.2; 32 bytes.
///
/// | Off | Size | Field     | Rule                                                         |
/// |-----|------|-----------|--------------------------------------------------------------|
/// | 0   | 16   | ItemId    | (ItemId, IsUser) unique                                      |
/// | 16  | 4    | Offset    | from the region start, >= 64 KiB; 0 iff Length is 0          |
/// | 20  | 4    | Length    | <= 1 MiB; the item lies inside the region, no overlaps       |
/// | 24  | 4    | Flags     | bit 0 IsUser, bit 1 IsVirtualDisk, bit 2 IsRequired; rest 0  |
/// | 28  | 4    | Reserved2 | 0                                                            |
public struct MetadataTableEntry: Equatable, Sendable {
    public static let encodedSize = 32
    public var itemID: GUID
    public var offset: UInt32
    public var length: UInt32
    public var flags: UInt32
    public var reserved2: UInt32

    public var isUser: Bool { flags & 1 != 0 }
    public var isVirtualDisk: Bool { flags & 2 != 0 }
    public var isRequired: Bool { flags & 4 != 0 }

    public init(itemID: GUID, offset: UInt32, length: UInt32, isUser: Bool = false, isVirtualDisk: Bool, isRequired: Bool) {
        self.itemID = itemID
        self.offset = offset
        self.length = length
        self.flags = (isUser ? 1 : 0) | (isVirtualDisk ? 2 : 0) | (isRequired ? 4 : 0)
        self.reserved2 = 0
    }

    public init(parsing r: inout ByteReader) throws(FormatError) {
        itemID = try r.readGUID("itemID")
        offset = try r.readUInt32("offset")
        length = try r.readUInt32("length")
        flags = try r.readUInt32("flags")
        reserved2 = try r.readUInt32("reserved2")
    }

    public func encode(into w: inout ByteWriter) {
        w.write(itemID)
        w.write(offset)
        w.write(length)
        w.write(flags)
        w.write(reserved2)
    }
}
