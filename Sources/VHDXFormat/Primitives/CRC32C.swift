internal import CCRC32C

/// CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, init and final XOR 0xFFFFFFFF.
///
/// VHDX checksums cover only headers (4 KiB), region tables (64 KiB) and log entries, never
/// payload; export streams checksum every payload. Every entry point ends in the buffer path: the
/// CPU's CRC-32C instruction when it has one, else slicing-by-8 in Swift (`software`).
public enum CRC32C {
    static let tables: [[UInt32]] = {
        var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[0][i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 { t[k][i] = (t[k - 1][i] >> 8) ^ t[0][Int(t[k - 1][i] & 0xFF)] }
        }
        return t
    }()

    /// Continues a running CRC (pass the previous result as `crc`, start with 0). Contiguous
    /// bytes (arrays and their slices: every caller) take the buffer path below, so no generic
    /// per-byte loop runs — that loop was most of the time metadata checksums took in a debug build.
    public static func update(_ crc: UInt32, _ bytes: some Collection<UInt8>) -> UInt32 {
        if let c = bytes.withContiguousStorageIfAvailable({ unsafe update(crc, UnsafeRawBufferPointer($0)) }) { return c }
        return unsafe Array(bytes).withUnsafeBytes { unsafe update(crc, $0) }
    }

    public static func checksum(_ bytes: some Collection<UInt8>) -> UInt32 { update(0, bytes) }

    /// The tables flattened (8 × 256), for the buffer path.
    static let flat: [UInt32] = tables.flatMap { $0 }

    /// Whether the CPU's CRC-32C instruction is used (`VHDX_CRC32C_HW=0` turns it off, to
    /// test the Swift path).
    public static let hardware: Bool = swvhdx_crc32c_hw_available() != 0

    /// Continues a running CRC over raw memory: the CPU's instruction when it has one, else
    /// slicing-by-8 on 8-byte loads, without copying. Export streams checksum every payload
    /// with this, so it must keep up with the disk.
    public static func update(_ crc: UInt32, _ buffer: UnsafeRawBufferPointer) -> UInt32 {
        let n = buffer.count
        guard n > 0 else { return crc }
        if hardware { return ~(unsafe swvhdx_crc32c_hw(~crc, buffer.baseAddress!, n)) }
        return unsafe software(crc, buffer)
    }

    /// The table-driven path of `update` (also what tests compare the instruction with).
    public static func software(_ crc: UInt32, _ buffer: UnsafeRawBufferPointer) -> UInt32 {
        var c = ~crc
        let n = buffer.count
        guard n > 0 else { return crc }
        unsafe flat.withUnsafeBufferPointer { t in
            let base = buffer.baseAddress!
            var i = 0
            while i + 8 <= n {
                let word = unsafe UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                let lo = c ^ UInt32(truncatingIfNeeded: word)
                let hi = UInt32(truncatingIfNeeded: word >> 32)
                c = unsafe t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                c = unsafe t[Int((c ^ UInt32(base.load(fromByteOffset: i, as: UInt8.self))) & 0xFF)] ^ (c >> 8)
                i += 1
            }
        }
        return ~c
    }

    /// The checksum of `bytes` with the 4-byte field at `fieldOffset` treated as zero, as every
    /// VHDX checksum is defined.
    public static func checksum(_ bytes: [UInt8], zeroingFieldAt fieldOffset: Int) -> UInt32 {
        var copy = bytes
        if fieldOffset >= 0 && fieldOffset + 4 <= copy.count {
            for i in 0..<4 { copy[fieldOffset + i] = 0 }
        }
        return checksum(copy)
    }
}
