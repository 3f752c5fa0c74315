/// Log entry header, [MS-VHDX] 2.3.1.1; the first 64 bytes of an entry's first descriptor sector.
///
/// | Off | Size | Field             | Rule                                              |
/// |-----|------|-------------------|---------------------------------------------------|
/// | 0   | 4    | Signature         | "loge"                                            |
/// | 4   | 4    | Checksum          | CRC-32C over EntryLength bytes, this field zero    |
/// | 8   | 4    | EntryLength       | non-zero multiple of 4 KiB                         |
/// | 12  | 4    | Tail              | log offset of the sequence's first entry, 4 KiB multiple |
/// | 16  | 8    | SequenceNumber    | > 0, +1 per entry                                  |
/// | 24  | 4    | DescriptorCount   | may be 0                                          |
/// | 28  | 4    | Reserved          | 0                                                 |
/// | 32  | 16   | LogGuid           | equals the header's LogGuid                       |
/// | 48  | 8    | FlushedFileOffset | the file is at least this long                    |
/// | 56  | 8    | LastFileOffset    | a size covering every structure                   |
public struct LogEntryHeader: Equatable, Sendable {
    public static let encodedSize = 64
    public var checksum: UInt32
    public var entryLength: UInt32
    public var tail: UInt32
    public var sequenceNumber: UInt64
    public var descriptorCount: UInt32
    public var reserved: UInt32
    public var logGUID: GUID
    public var flushedFileOffset: UInt64
    public var lastFileOffset: UInt64

    public init(entryLength: UInt32, tail: UInt32, sequenceNumber: UInt64, descriptorCount: UInt32,
                logGUID: GUID, flushedFileOffset: UInt64, lastFileOffset: UInt64) {
        checksum = 0
        self.entryLength = entryLength
        self.tail = tail
        self.sequenceNumber = sequenceNumber
        self.descriptorCount = descriptorCount
        reserved = 0
        self.logGUID = logGUID
        self.flushedFileOffset = flushedFileOffset
        self.lastFileOffset = lastFileOffset
    }

    public init(parsing r: inout ByteReader) throws(FormatError) {
        try r.expectSignature(Signature.logEntry)
        checksum = try r.readUInt32("checksum")
        entryLength = try r.readUInt32("entryLength")
        tail = try r.readUInt32("tail")
        sequenceNumber = try r.readUInt64("sequenceNumber")
        descriptorCount = try r.readUInt32("descriptorCount")
        reserved = try r.readUInt32("reserved")
        logGUID = try r.readGUID("logGUID")
        flushedFileOffset = try r.readUInt64("flushedFileOffset")
        lastFileOffset = try r.readUInt64("lastFileOffset")
    }

    public func encode(into w: inout ByteWriter) {
        w.write(Signature.logEntry)
        w.write(checksum)
        w.write(entryLength)
        w.write(tail)
        w.write(sequenceNumber)
        w.write(descriptorCount)
        w.write(reserved)
        w.write(logGUID)
        w.write(flushedFileOffset)
        w.write(lastFileOffset)
    }

    /// Descriptor sectors an entry with `count` descriptors needs: the first sector holds the
    /// 64-byte header plus 126 descriptors, later ones 128 each.
    public static func descriptorSectors(count: UInt64) -> UInt64 { (count + 2 + 127) / 128 }
}
