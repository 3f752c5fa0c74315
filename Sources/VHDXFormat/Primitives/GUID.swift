/// A GUID in Microsoft's mixed-endian on-disk layout: Data1 (u32) and Data2/Data3 (u16) are
/// little-endian, Data4 is 8 raw bytes. `bytes` is the on-disk form; `description` the text form.
///
/// A 16-byte value (no heap storage): the on-disk bytes 0–7 and 8–15, each packed big-endian
/// into a `UInt64`, so comparing (`high`, `low`) orders GUIDs like their bytes. Nothing here
/// traps: bytes of the wrong count or malformed text give nil.
public struct GUID: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// On-disk bytes 0–7, the first one in the top byte.
    let high: UInt64
    /// On-disk bytes 8–15 (Data4), the first one in the top byte.
    let low: UInt64

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The GUID whose text form is `data1-data2-data3-data4`, written as integer literals:
    /// `GUID(0x2DC27766, 0xF623, 0x4200, 0x9D64_115E9BFD4A08)` is
    /// {2DC27766-F623-4200-9D64-115E9BFD4A08}. For constants: nothing is parsed at run time.
    public init(_ data1: UInt32, _ data2: UInt16, _ data3: UInt16, _ data4: UInt64) {
        // On disk Data1..Data3 are little-endian: their low byte comes first.
        high = UInt64(data1.byteSwapped) << 32 | UInt64(data2.byteSwapped) << 16 | UInt64(data3.byteSwapped)
        low = data4
    }

    /// From its 16 on-disk bytes; nil unless there are exactly 16.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var h: UInt64 = 0, l: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { h = h << 8 | UInt64(b) } else { l = l << 8 | UInt64(b) }
        }
        self.init(high: h, low: l)
    }

    /// The 16 on-disk bytes.
    public var bytes: [UInt8] {
        (0..<16).map { i in UInt8(truncatingIfNeeded: (i < 8 ? high : low) >> UInt64(56 - 8 * (i % 8))) }
    }

    public static let zero = GUID(high: 0, low: 0)

    public var isZero: Bool { high == 0 && low == 0 }

    /// Parses "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX", with or without braces, any case.
    public init?(text: String) {
        var s = Substring(text)
        if s.hasPrefix("{") && s.hasSuffix("}") { s = s.dropFirst().dropLast() }
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 5, parts.map(\.count) == [8, 4, 4, 4, 12] else { return nil }
        // The text is big-endian: the five fields as numbers, Data4 being the last two.
        var fields: [UInt64] = []
        for part in parts {
            var value: UInt64 = 0
            for c in part.utf8 {
                guard let n = GUID.nibble(c) else { return nil }
                value = value << 4 | UInt64(n)
            }
            fields.append(value)
        }
        self.init(UInt32(truncatingIfNeeded: fields[0]), UInt16(truncatingIfNeeded: fields[1]), UInt16(truncatingIfNeeded: fields[2]),
                  fields[3] << 48 | fields[4])
    }

    /// A new random (version 4) GUID.
    public static func random() -> GUID {
        var g = SystemRandomNumberGenerator()
        return random(using: &g)
    }

    public static func random(using rng: inout some RandomNumberGenerator) -> GUID {
        // One byte at a time, in on-disk order, as before the GUID was two integers: a seeded
        // generator gives the same GUIDs it always did.
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<16 {
            let b = UInt64(UInt8.random(in: 0...255, using: &rng))
            if i < 8 { h = h << 8 | b } else { l = l << 8 | b }
        }
        h = (h & ~0xF0) | 0x40                  // version nibble: Data3's high byte, stored second (byte 7)
        l = (l & ~(0xC0 << 56)) | (0x80 << 56)  // variant bits: byte 8
        return GUID(high: h, low: l)
    }

    public var description: String {
        let b = bytes
        let text = [b[3], b[2], b[1], b[0]] + [b[5], b[4]] + [b[7], b[6]] + Array(b[8..<10]) + Array(b[10..<16])
        let h = hex(text)
        let c = Array(h)
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-"
            + String(c[16..<20]) + "-" + String(c[20..<32])
    }

    public static func < (a: GUID, b: GUID) -> Bool { (a.high, a.low) < (b.high, b.low) }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
