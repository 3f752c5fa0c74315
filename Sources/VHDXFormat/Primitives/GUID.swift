/// A GUID in Microsoft's mixed-endian on-disk layout: Data1 (u32) and Data2/Data3 (u16) are
/// little-endian, Data4 is 8 raw bytes. `bytes` is the on-disk form; `description` the text form.
public struct GUID: Hashable, Sendable, CustomStringConvertible, Comparable {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 16, "a GUID is 16 bytes")
        self.bytes = bytes
    }

    public static let zero = GUID(bytes: [UInt8](repeating: 0, count: 16))

    public var isZero: Bool { bytes.allSatisfy { $0 == 0 } }

    /// Parses "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX", with or without braces, any case.
    public init?(text: String) {
        var s = Substring(text)
        if s.hasPrefix("{") && s.hasSuffix("}") { s = s.dropFirst().dropLast() }
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 5, parts.map(\.count) == [8, 4, 4, 4, 12] else { return nil }
        var raw: [UInt8] = []
        for part in parts {
            var chars = Array(part.utf8)
            while chars.count >= 2 {
                guard let hi = GUID.nibble(chars[0]), let lo = GUID.nibble(chars[1]) else { return nil }
                raw.append(hi << 4 | lo)
                chars.removeFirst(2)
            }
        }
        // raw is the big-endian text order; swap Data1..Data3 into on-disk order.
        self.bytes = [raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6]] + raw[8..<16]
    }

    /// A new random (version 4) GUID.
    public static func random() -> GUID {
        var g = SystemRandomNumberGenerator()
        return random(using: &g)
    }

    public static func random(using rng: inout some RandomNumberGenerator) -> GUID {
        var b = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        b[7] = (b[7] & 0x0F) | 0x40  // version nibble sits in Data3's high byte, stored second
        b[8] = (b[8] & 0x3F) | 0x80
        return GUID(bytes: b)
    }

    public var description: String {
        let b = bytes
        let text = [b[3], b[2], b[1], b[0]] + [b[5], b[4]] + [b[7], b[6]] + Array(b[8..<10]) + Array(b[10..<16])
        let h = hex(text)
        let c = Array(h)
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-"
            + String(c[16..<20]) + "-" + String(c[20..<32])
    }

    public static func < (a: GUID, b: GUID) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
