/// Big-endian reading and writing of the protocol's fields, bounds-checked: a truncated or
/// overlong field is a `nil`, never a trap.

/// Reads fields from the front of a byte array (an option's data, a reply's payload).
package struct WireReader {
    package let bytes: [UInt8]
    package private(set) var position = 0

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    package var remaining: Int { bytes.count - position }

    package mutating func u16() -> UInt16? { integer(UInt16.self) }
    package mutating func u32() -> UInt32? { integer(UInt32.self) }
    package mutating func u64() -> UInt64? { integer(UInt64.self) }

    package mutating func bytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, count <= remaining else { return nil }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    /// A protocol string: valid UTF-8, no NUL, at most `NBDLimits.maxStringLength` bytes.
    package mutating func string(_ count: Int) -> String? {
        guard count <= NBDLimits.maxStringLength, let raw = bytes(count) else { return nil }
        return WireString.decode(raw)
    }

    private mutating func integer<T: FixedWidthInteger>(_: T.Type) -> T? {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { return nil }
        var value: T = 0
        for i in 0..<size { value = value << 8 | T(bytes[position + i]) }
        position += size
        return value
    }
}

/// Reads fixed-size headers from raw memory (a request straight from the receive buffer).
package enum WireLoad {
    package static func u16(_ raw: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self))
    }
    package static func u32(_ raw: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }
    package static func u64(_ raw: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))
    }
}

/// Appends fields to a byte array.
package struct WireWriter {
    package var bytes: [UInt8] = []

    package init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    package mutating func u16(_ v: UInt16) { append(v) }
    package mutating func u32(_ v: UInt32) { append(v) }
    package mutating func u64(_ v: UInt64) { append(v) }
    package mutating func bytes(_ b: some Sequence<UInt8>) { bytes.append(contentsOf: b) }
    /// The string's UTF-8, cut at `NBDLimits.maxStringLength` bytes on a character boundary.
    package mutating func string(_ s: String) { bytes.append(contentsOf: WireString.encode(s)) }

    private mutating func append<T: FixedWidthInteger>(_ v: T) {
        var b = v.bigEndian
        withUnsafeBytes(of: &b) { bytes.append(contentsOf: $0) }
    }
}

/// The protocol's strings: UTF-8 without NUL, at most 4096 bytes.
package enum WireString {
    package static func decode(_ raw: [UInt8]) -> String? {
        guard raw.count <= NBDLimits.maxStringLength, !raw.contains(0) else { return nil }
        return String(validating: raw, as: UTF8.self)
    }

    /// The UTF-8 of `s` with NULs dropped, cut to the limit without splitting a character.
    package static func encode(_ s: String, limit: Int = NBDLimits.maxStringLength) -> [UInt8] {
        var out: [UInt8] = []
        for ch in s where ch != "\0" {
            let u = Array(String(ch).utf8)
            if out.count + u.count > limit { break }
            out.append(contentsOf: u)
        }
        return out
    }
}
