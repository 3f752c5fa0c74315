/// Parent Locator metadata item, [MS-VHDX] 2.6.2.6: a 20-byte header, KeyValueCount 12-byte
/// entries, then UTF-16LE key/value data. Offsets count from the start of the item.
///
/// Header: | 0 | 16 | LocatorType (VHDX: B04AEFB7-…) | 16 | 2 | Reserved | 18 | 2 | KeyValueCount |
/// Entry:  | 0 | 4 | KeyOffset | 4 | 4 | ValueOffset | 8 | 2 | KeyLength | 10 | 2 | ValueLength |
///
/// Keys for type VHDX: parent_linkage (required, braced GUID text = parent's DataWriteGuid),
/// parent_linkage2, relative_path, volume_path, absolute_win32_path.
public struct ParentLocator: Equatable, Sendable {
    public var locatorType: GUID
    public var reserved: UInt16
    /// Key/value pairs in file order (keys are unique).
    public var entries: [(key: String, value: String)]

    public init(locatorType: GUID = KnownGUID.parentLocatorTypeVHDX, entries: [(key: String, value: String)]) {
        self.locatorType = locatorType
        self.reserved = 0
        self.entries = entries
    }

    public static func == (a: ParentLocator, b: ParentLocator) -> Bool {
        a.locatorType == b.locatorType && a.reserved == b.reserved
            && a.entries.map(\.key) == b.entries.map(\.key) && a.entries.map(\.value) == b.entries.map(\.value)
    }

    public subscript(key: String) -> String? { entries.first { $0.key == key }?.value }

    public var parentLinkage: GUID? { self["parent_linkage"].flatMap { GUID(text: $0) } }
    public var parentLinkage2: GUID? { self["parent_linkage2"].flatMap { GUID(text: $0) } }

    public init(parsing r: inout ByteReader) throws(FormatError) {
        let itemStart = r.position
        let itemBase = r.fileOffset
        locatorType = try r.readGUID("locatorType")
        reserved = try r.readUInt16("reserved")
        let count = try r.readUInt16("keyValueCount")
        guard Int(count) * 12 <= r.remaining else {
            throw FormatError(.truncated, "parent locator", field: "keyValueCount", at: itemBase + 18,
                              "\(count) entries do not fit in the item")
        }
        var raw: [(UInt32, UInt32, UInt16, UInt16, UInt64)] = []
        for i in 0..<Int(count) {
            let at = r.fileOffset
            raw.append((try r.readUInt32("entries[\(i)].keyOffset"), try r.readUInt32("entries[\(i)].valueOffset"),
                        try r.readUInt16("entries[\(i)].keyLength"), try r.readUInt16("entries[\(i)].valueLength"), at))
        }
        var out: [(key: String, value: String)] = []
        var keys = Set<String>()
        for (i, (ko, vo, kl, vl, at)) in raw.enumerated() {
            func string(_ off: UInt32, _ len: UInt16, _ what: String) throws(FormatError) -> String {
                guard off > 0, len > 0, len % 2 == 0 else {
                    throw FormatError(.outOfRange, "parent locator", field: "entries[\(i)].\(what)", at: at,
                                      "offset \(off) length \(len): offsets and lengths must be non-zero, lengths even")
                }
                let start = itemStart + Int(off)
                let end = start + Int(len)
                guard end <= r.bytes.count else {
                    throw FormatError(.truncated, "parent locator", field: "entries[\(i)].\(what)", at: at,
                                      "[\(off), \(UInt64(off) + UInt64(len))) runs past the item")
                }
                var units: [UInt16] = []
                for k in stride(from: start, to: end, by: 2) { units.append(UInt16(r.bytes[k]) | UInt16(r.bytes[k + 1]) << 8) }
                if units.contains(0) {
                    throw FormatError(.inconsistent, "parent locator", field: "entries[\(i)].\(what)", at: at, "contains a NUL character")
                }
                return String(decoding: units, as: UTF16.self)
            }
            let key = try string(ko, kl, "key")
            let value = try string(vo, vl, "value")
            guard keys.insert(key).inserted else {
                throw FormatError(.inconsistent, "parent locator", field: "entries[\(i)].key", at: at, "key \"\(key)\" appears twice")
            }
            out.append((key, value))
        }
        entries = out
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.write(locatorType)
        w.write(reserved)
        w.write(UInt16(entries.count))
        var data: [UInt8] = []
        var offset = 20 + 12 * entries.count
        func utf16(_ s: String) -> [UInt8] { s.utf16.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8($0 >> 8)] } }
        for e in entries {
            let k = utf16(e.key), v = utf16(e.value)
            w.write(UInt32(offset)); w.write(UInt32(offset + k.count))
            w.write(UInt16(k.count)); w.write(UInt16(v.count))
            data += k + v
            offset += k.count + v.count
        }
        w.write(data)
        return w.bytes
    }
}
