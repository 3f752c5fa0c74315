import Testing
@testable import VHDXFormat

@Suite("Sector bitmap runs")
struct SectorBitmapTests {
    /// `runs` (and the word-at-a-time skip in `runEnd` under it) against a bit-by-bit scan,
    /// over bitmaps with long equal stretches (whole words of 0 or 1) and scattered flips.
    @Test func runsMatchABitByBitScan() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 11 }
        for trial in 0..<400 {
            var bytes = [UInt8](repeating: 0, count: 96)
            var value: UInt8 = trial % 2 == 0 ? 0 : 0xFF
            var i = 0
            while i < bytes.count {
                let n = Int(next() % 24) + 1
                for k in i..<min(bytes.count, i + n) { bytes[k] = value }
                if next() % 3 == 0, i < bytes.count { bytes[i] ^= UInt8(1 << (next() % 8)) }
                value = ~value
                i += n
            }
            let first = Int(next() % 200)
            let count = Int(next() % UInt64(bytes.count * 8 - first)) + 1
            var expected: [(Bool, Range<Int>)] = []
            for bit in first..<first + count {
                let v = bytes[bit / 8] & (1 << UInt8(bit % 8)) != 0
                if let last = expected.last, last.0 == v {
                    expected[expected.count - 1].1 = last.1.lowerBound..<bit + 1
                } else {
                    expected.append((v, bit..<bit + 1))
                }
            }
            let got = bytes.withUnsafeBytes { SectorBitmap.runs($0, first: first, count: count) }
            #expect(got.map { $0.present } == expected.map { $0.0 }, "trial \(trial)")
            #expect(got.map { $0.bits } == expected.map { $0.1 }, "trial \(trial)")
        }
    }

    /// The module never traps on input: a bit range past the slice (or before it, or one whose
    /// end overflows) reports the bits the slice holds instead of stopping the process.
    @Test func aRangeOutsideTheSliceIsClipped() {
        let bytes: [UInt8] = [0x0F, 0xFF]  // bits 0-3 and 8-15 set, 4-7 clear
        bytes.withUnsafeBytes { b in
            let whole = SectorBitmap.runs(b, first: 0, count: 16).map { $0.bits }
            #expect(whole == [0..<4, 4..<8, 8..<16])
            #expect(SectorBitmap.runs(b, first: 4, count: 100).map { $0.bits } == [4..<8, 8..<16])
            #expect(SectorBitmap.runs(b, first: -3, count: 6).map { $0.bits } == [0..<3])
            #expect(SectorBitmap.runs(b, first: 12, count: .max).map { $0.bits } == [12..<16])
            #expect(SectorBitmap.runs(b, first: 20, count: 4).isEmpty)
            #expect(SectorBitmap.runs(b, first: 3, count: -1).isEmpty)
        }
    }
}
