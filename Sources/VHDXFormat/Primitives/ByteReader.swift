/// A little-endian cursor over bytes read from a file.
///
/// `base` is the absolute file offset of `bytes[0]`, so every error can name where it happened.
/// Reads past the end throw `.truncated`; nothing here traps on input.
public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var position: Int
    public let base: UInt64
    public let structure: String

    public init(_ bytes: [UInt8], base: UInt64 = 0, structure: String) {
        self.bytes = bytes
        self.position = 0
        self.base = base
        self.structure = structure
    }

    public init(_ bytes: ArraySlice<UInt8>, base: UInt64 = 0, structure: String) {
        self.init(Array(bytes), base: base, structure: structure)
    }

    public var remaining: Int { bytes.count - position }
    public var fileOffset: UInt64 { base + UInt64(position) }

    func need(_ n: Int, _ field: String) throws(FormatError) {
        guard n >= 0, remaining >= n else {
            throw FormatError(.truncated, structure, field: field, at: fileOffset,
                              "needs \(n) bytes, \(remaining) left")
        }
    }

    public mutating func readUInt8(_ field: String) throws(FormatError) -> UInt8 {
        try need(1, field)
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func readUInt16(_ field: String) throws(FormatError) -> UInt16 {
        UInt16(truncatingIfNeeded: try readLE(2, field))
    }

    public mutating func readUInt32(_ field: String) throws(FormatError) -> UInt32 {
        UInt32(truncatingIfNeeded: try readLE(4, field))
    }

    public mutating func readUInt64(_ field: String) throws(FormatError) -> UInt64 {
        try readLE(8, field)
    }

    public mutating func readBytes(_ n: Int, _ field: String) throws(FormatError) -> [UInt8] {
        try need(n, field)
        defer { position += n }
        return Array(bytes[position..<position + n])
    }

    /// Sixteen bytes, checked to be there first: a fixed-size read that cannot fail otherwise.
    public mutating func readGUID(_ field: String) throws(FormatError) -> GUID {
        try need(16, field)
        defer { position += 16 }
        func packed(_ at: Int) -> UInt64 { bytes[at..<at + 8].reduce(0) { $0 << 8 | UInt64($1) } }
        return GUID(high: packed(position), low: packed(position + 8))
    }

    public mutating func skip(_ n: Int, _ field: String) throws(FormatError) {
        try need(n, field)
        position += n
    }

    public mutating func seek(to offset: Int, _ field: String) throws(FormatError) {
        guard offset >= 0, offset <= bytes.count else {
            throw FormatError(.truncated, structure, field: field, at: base + UInt64(max(0, offset)),
                              "offset \(offset) is outside \(bytes.count) bytes")
        }
        position = offset
    }

    /// Reads a signature and checks it against the expected ASCII bytes.
    public mutating func expectSignature(_ expected: [UInt8], _ field: String = "signature") throws(FormatError) {
        let at = fileOffset
        let got = try readBytes(expected.count, field)
        guard got == expected else {
            throw FormatError(.badSignature, structure, field: field, at: at,
                              "expected \"\(String(decoding: expected, as: UTF8.self))\", found \(hex(got))")
        }
    }

    private mutating func readLE(_ n: Int, _ field: String) throws(FormatError) -> UInt64 {
        try need(n, field)
        var v: UInt64 = 0
        for i in 0..<n { v |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += n
        return v
    }
}

/// Little-endian load of an integer at a byte index, for hot loops over already bounds-checked
/// buffers (the BAT). Returns nil instead of trapping when out of range.
@inline(__always)
package func loadUInt64LE(_ bytes: [UInt8], at i: Int) -> UInt64? {
    guard i >= 0, i + 8 <= bytes.count else { return nil }
    var v: UInt64 = 0
    for k in 0..<8 { v |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
    return v
}

package func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    var s = ""
    for b in bytes { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 15)]) }
    return s
}
