import VHDXFormat

/// The 64 bytes in front of every record of an export stream (EXPORT-FORMAT.md §2).
struct RecordHeader: Equatable, Sendable {
    enum Kind: UInt8, Sendable {
        case header = 1, data = 2, zero = 3, trailer = 4
    }

    enum Flag {
        /// The payload is zlib-compressed (else stored as is).
        static let deflated: UInt8 = 1
        static let known: UInt8 = 1
    }

    static let size = 64
    static let magic: [UInt8] = Array("vhdxexp1".utf8)

    var streamID: GUID
    var index: UInt64
    var kind: Kind
    var flags: UInt8 = 0
    var bodyLength: UInt32
    var offset: UInt64 = 0
    var length: UInt64 = 0
    var bodyCRC: UInt32

    var isDeflated: Bool { flags & Flag.deflated != 0 }

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: RecordHeader.size)
        w.write(RecordHeader.magic)
        w.write(streamID)
        w.write(index)
        w.write(kind.rawValue)
        w.write(flags)
        w.write(UInt16(0))
        w.write(bodyLength)
        w.write(offset)
        w.write(length)
        w.write(bodyCRC)
        w.write(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// Decodes and checks the header's own checksum and fields; `at` is its stream offset.
    static func decode(_ bytes: [UInt8], at position: UInt64) throws(FormatError) -> RecordHeader {
        var r = ByteReader(bytes, base: position, structure: "export record header")
        try r.expectSignature(magic, "magic")
        let stored = loadUInt32(bytes, 60)
        let actual = CRC32C.checksum(bytes[0..<60])
        guard stored == actual else {
            throw FormatError(.badChecksum, "export record header", field: "header CRC-32C", at: position,
                              "stored \(hex32(stored)), computed \(hex32(actual))")
        }
        let id = try r.readGUID("stream id")
        let index = try r.readUInt64("index")
        let rawKind = try r.readUInt8("kind")
        guard let kind = Kind(rawValue: rawKind) else {
            throw FormatError(.outOfRange, "export record header", field: "kind", at: position + 32, "unknown record kind \(rawKind)")
        }
        let flags = try r.readUInt8("flags")
        guard flags & ~Flag.known == 0 else {
            throw FormatError(.outOfRange, "export record header", field: "flags", at: position + 33, "unknown flags \(flags)")
        }
        guard try r.readUInt16("reserved") == 0 else {
            throw FormatError(.reservedNonZero, "export record header", field: "reserved", at: position + 34, "bytes 34-35 must be zero")
        }
        let body = try r.readUInt32("body length")
        let offset = try r.readUInt64("virtual offset")
        let length = try r.readUInt64("length")
        let crc = try r.readUInt32("body CRC-32C")
        return RecordHeader(streamID: id, index: index, kind: kind, flags: flags, bodyLength: body, offset: offset, length: length, bodyCRC: crc)
    }
}

func loadUInt32(_ b: [UInt8], _ i: Int) -> UInt32 {
    UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
}

func hex32(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}
