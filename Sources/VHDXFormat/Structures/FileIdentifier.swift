/// File type identifier, [MS-VHDX] 2.2.1; offset 0, a 64 KiB slot of which 520 bytes are defined.
///
/// | Off | Size | Field     | Rule                                         |
/// |-----|------|-----------|----------------------------------------------|
/// | 0   | 8    | Signature | "vhdxfile"                                   |
/// | 8   | 512  | Creator   | UTF-16LE, optional, NUL-terminated; diagnostic only |
public struct FileIdentifier: Equatable, Sendable {
    public static let encodedSize = 520
    public var creator: String

    public init(creator: String) { self.creator = creator }

    public init(parsing r: inout ByteReader) throws(FormatError) {
        try r.expectSignature(Signature.file)
        let raw = try r.readBytes(512, "creator")
        var units: [UInt16] = []
        for i in stride(from: 0, to: raw.count, by: 2) {
            let u = UInt16(raw[i]) | UInt16(raw[i + 1]) << 8
            if u == 0 { break }
            units.append(u)
        }
        creator = String(decoding: units, as: UTF16.self)
    }

    public func encode(into w: inout ByteWriter) {
        w.write(Signature.file)
        var units = Array(creator.utf16.prefix(255))
        units.append(0)
        for u in units { w.write(u) }
        w.writeZeros(512 - units.count * 2)
    }
}
