/// A differencing disk's sector bitmap (docs/vhdx-format.md §4): one bit per logical sector,
/// LSB-first within each byte; 1 = the sector's data is in this file, 0 = read the parent.
/// These helpers work on any slice of the bitmap, addressed by bit (= sector) number relative
/// to the slice's first byte.
public enum SectorBitmap {
    /// Runs of equal bits over bits [first, first + count), in order: (bit value, bit range).
    /// Only bits the slice holds are reported: a range reaching past it (or before it) is
    /// clipped to the slice, never a trap, since this module promises not to trap on input.
    public static func runs(_ bytes: UnsafeRawBufferPointer, first: Int, count: Int) -> [(present: Bool, bits: Range<Int>)] {
        var out: [(Bool, Range<Int>)] = []
        let limit = bytes.count * 8
        var i = min(max(first, 0), limit)
        // first + count, clipped to the slice without overflowing.
        let end = count <= 0 ? i : max(i, first > limit - count ? limit : first + count)
        while i < end {
            let j = unsafe runEnd(bytes, from: i, to: end)
            out.append((unsafe bit(bytes, i), i..<j))
            i = j
        }
        return out
    }

    /// The end of the run of bits equal to bit `i`, at most `end`. Allocates nothing: chain
    /// reads scan a bitmap once per layer and sub-range, millions of times on fragmented chains.
    @inline(__always)
    public static func runEnd(_ bytes: UnsafeRawBufferPointer, from i: Int, to end: Int) -> Int {
        let value = unsafe bit(bytes, i)
        var j = i + 1
        while j < end {
            // Whole bytes (and 8-byte words) of the same value are skipped at once.
            if j % 64 == 0, j + 64 <= end {
                let w = unsafe bytes.loadUnaligned(fromByteOffset: j / 8, as: UInt64.self)
                if w == (value ? ~0 : 0) { j += 64; continue }
            }
            if j % 8 == 0, j + 8 <= end {
                let b = unsafe bytes[j / 8]
                if b == (value ? 0xFF : 0) { j += 8; continue }
            }
            if unsafe bit(bytes, j) != value { break }
            j += 1
        }
        return j
    }

    @inline(__always)
    public static func bit(_ bytes: UnsafeRawBufferPointer, _ i: Int) -> Bool {
        unsafe bytes[i / 8] & (1 << UInt8(i % 8)) != 0
    }

    /// Clears bits [range) of `bytes`.
    public static func clear(_ bytes: inout [UInt8], _ range: Range<Int>) {
        for i in range { bytes[i / 8] &= ~(1 << UInt8(i % 8)) }
    }

    /// Sets bits [range) of `bytes`.
    public static func set(_ bytes: inout [UInt8], _ range: Range<Int>) {
        var i = range.lowerBound
        while i < range.upperBound {
            if i % 8 == 0, i + 8 <= range.upperBound {
                bytes[i / 8] = 0xFF
                i += 8
            } else {
                bytes[i / 8] |= 1 << UInt8(i % 8)
                i += 1
            }
        }
    }
}
