/// Virtual Disk ID metadata item ("Page 83 Data"), [MS-VHDX] 2.6.2.3; 16 bytes: a GUID shared by
/// every layer of a chain, so it cannot identify a parent.
public struct VirtualDiskID: Equatable, Sendable {
    public static let encodedSize = 16
    public var guid: GUID

    public init(_ guid: GUID) { self.guid = guid }

    public init(parsing r: inout ByteReader) throws(FormatError) {
        guid = try r.readGUID("virtualDiskID")
    }

    public func encode(into w: inout ByteWriter) { w.write(guid) }
}
