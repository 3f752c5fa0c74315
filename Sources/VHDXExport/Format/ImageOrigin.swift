import VHDXFormat

/// What an exported or restored image holds, in a 4 KiB page of a non-required region of our
/// own (other readers skip it): the export whose target content it is, and an apply under way
/// (EXPORT-FORMAT.md §6). Updated only through the image's log.
public struct ImageOrigin: Equatable, Sendable {
    package static let regionGUID = GUID(0x0faf8a1a, 0xb3d4, 0x45fc, 0xa8a6_7bf52d9528c2)  // {0faf8a1a-b3d4-45fc-a8a6-7bf52d9528c2}
    static let magic: [UInt8] = Array("vhdxorg1".utf8)
    static let pageSize = 4096

    /// The export whose target the image holds (for an incremental applied last: its header).
    public var holds: StreamHeader
    /// An apply that started and has not finished: the image is between `holds` and this.
    public var pending: StreamHeader?
    /// The image's DataWriteGuid when `holds` was recorded; another one means someone wrote
    /// the image since, so it no longer holds the export.
    public var dataWriteGUID: GUID

    package init(holds: StreamHeader, pending: StreamHeader?, dataWriteGUID: GUID) {
        self.holds = holds
        self.pending = pending
        self.dataWriteGUID = dataWriteGUID
    }

    package func encode() -> [UInt8] {
        var w = ByteWriter(capacity: ImageOrigin.pageSize)
        w.write(ImageOrigin.magic)
        w.write(UInt32(1))
        w.write(UInt32(pending == nil ? 0 : 1))
        w.write(dataWriteGUID)
        w.write(holds.encode())
        w.write(pending?.encode() ?? [UInt8](repeating: 0, count: StreamHeader.bodySize))
        w.pad(to: ImageOrigin.pageSize - 4)
        w.write(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    package static func decode(_ page: [UInt8], at position: UInt64) throws(FormatError) -> ImageOrigin {
        let s = "export origin record"
        guard page.count == pageSize else { throw FormatError(.truncated, s, at: position, "\(page.count) bytes") }
        let stored = loadUInt32(page, pageSize - 4), actual = CRC32C.checksum(page[0..<pageSize - 4])
        guard stored == actual else {
            throw FormatError(.badChecksum, s, field: "CRC-32C", at: position, "stored \(hex32(stored)), computed \(hex32(actual))")
        }
        var r = ByteReader(page, base: position, structure: s)
        try r.expectSignature(magic, "magic")
        let version = try r.readUInt32("version")
        guard version == 1 else { throw FormatError(.unsupported, s, field: "version", at: position + 8, "version \(version)") }
        let flags = try r.readUInt32("flags")
        guard flags <= 1 else { throw FormatError(.outOfRange, s, field: "flags", at: position + 12, "unknown flags \(flags)") }
        let dwg = try r.readGUID("data write guid")
        let holds = try StreamHeader.decode(try r.readBytes(StreamHeader.bodySize, "holds"), at: position + 32)
        let pendingBytes = try r.readBytes(StreamHeader.bodySize, "pending")
        let pending = flags == 1 ? try StreamHeader.decode(pendingBytes, at: position + 288) : nil
        return ImageOrigin(holds: holds, pending: pending, dataWriteGUID: dwg)
    }
}
