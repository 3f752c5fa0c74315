/// Builds the little-endian byte image of a structure.
public struct ByteWriter {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ v: UInt8) { bytes.append(v) }
    public mutating func write(_ v: UInt16) { writeLE(UInt64(v), 2) }
    public mutating func write(_ v: UInt32) { writeLE(UInt64(v), 4) }
    public mutating func write(_ v: UInt64) { writeLE(v, 8) }
    public mutating func write(_ g: GUID) { bytes.append(contentsOf: g.bytes) }
    public mutating func write(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    public mutating func writeZeros(_ n: Int) { bytes.append(contentsOf: [UInt8](repeating: 0, count: n)) }  // an array: a memset, not a generic per-byte loop in debug builds

    /// Pads with zeros up to `size` bytes in total.
    public mutating func pad(to size: Int) {
        if bytes.count < size { writeZeros(size - bytes.count) }
    }

    /// Overwrites 4 bytes at `index` (used to patch a checksum in after it is computed).
    public mutating func set(_ v: UInt32, at index: Int) {
        for i in 0..<4 { bytes[index + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }

    private mutating func writeLE(_ v: UInt64, _ n: Int) {
        for i in 0..<n { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
}
