#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDXFormat

/// Compares two disks like `qemu-img compare`.
///
/// Default: unallocated reads as zeros, and when the sizes differ the longer disk's tail must be
/// all zeros. Strict: the sizes must be equal and allocation must match as well as content; a
/// size mismatch is reported at the shorter disk's end unless an earlier byte differs.
///
/// Ranges unallocated on both sides are skipped without reading; everything else is compared in
/// `chunkSize` pieces (memcmp, or a word-wise zero check against an unallocated side). Memory:
/// two chunk buffers. The engine of `DiskImage.compare(with:options:progress:)`, the public API;
/// tests also choose its chunk size.
package struct ImageComparer {
    package typealias Progress = (_ done: UInt64, _ total: UInt64) -> Void
    package static let defaultChunkSize = 4 << 20

    package let a: DiskImage
    package let b: DiskImage
    package var strict: Bool
    package var chunkSize: Int

    package init(_ a: DiskImage, _ b: DiskImage, strict: Bool = false, chunkSize: Int = ImageComparer.defaultChunkSize) {
        precondition(chunkSize > 0)
        self.a = a
        self.b = b
        self.strict = strict
        self.chunkSize = chunkSize
    }

    package func compare(progress: Progress? = nil) throws(VHDXError) -> CompareResult {
        let sizeA = a.virtualSize, sizeB = b.virtualSize
        let end = strict ? min(sizeA, sizeB) : max(sizeA, sizeB)
        var result = CompareResult(firstDifference: nil, reason: nil, sizeA: sizeA, sizeB: sizeB, comparedBytes: 0, bytesRead: 0)
        let bufA = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 4096)
        let bufB = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 4096)
        defer { bufA.deallocate(); bufB.deallocate() }

        func differ(at offset: UInt64, _ reason: CompareResult.Reason) -> CompareResult {
            var r = result
            r.firstDifference = offset
            r.reason = reason
            r.comparedBytes = offset
            return r
        }

        var pos: UInt64 = 0
        while pos < end {
            let (allocA, endA) = try run(a, at: pos)
            let (allocB, endB) = try run(b, at: pos)
            let runEnd = min(endA, endB, end)
            if strict && allocA != allocB { return differ(at: pos, .allocation) }
            if !allocA && !allocB {
                pos = runEnd
                progress?(pos, end)
                continue
            }
            while pos < runEnd {
                let n = Int(min(UInt64(chunkSize), runEnd - pos))
                let pieceA = UnsafeMutableRawBufferPointer(rebasing: bufA[0..<n])
                let pieceB = UnsafeMutableRawBufferPointer(rebasing: bufB[0..<n])
                let mismatch: Int?
                if allocA && allocB {
                    try a.read(into: pieceA, at: pos)
                    try b.read(into: pieceB, at: pos)
                    result.bytesRead += 2 * UInt64(n)
                    mismatch = firstMismatch(UnsafeRawBufferPointer(pieceA), UnsafeRawBufferPointer(pieceB))
                } else {
                    let (image, piece) = allocA ? (a, pieceA) : (b, pieceB)
                    try image.read(into: piece, at: pos)
                    result.bytesRead += UInt64(n)
                    mismatch = firstNonZero(UnsafeRawBufferPointer(piece))
                }
                if let mismatch { return differ(at: pos + UInt64(mismatch), .content) }
                pos += UInt64(n)
                progress?(pos, end)
            }
        }
        if strict && sizeA != sizeB { return differ(at: end, .size) }
        result.comparedBytes = end
        progress?(end, end)
        return result
    }

    /// Allocation at `pos` and where that run ends; past a disk's end it reads as unallocated zeros.
    private func run(_ image: DiskImage, at pos: UInt64) throws(VHDXError) -> (Bool, UInt64) {
        guard pos < image.virtualSize else { return (false, UInt64.max) }
        let r = try image.allocationRun(at: pos)
        return (r.allocated, r.range.upperBound)
    }
}

/// Index of the first byte where `x` and `y` (of equal length) differ; memcmp first, then
/// narrowed 4 KiB at a time.
func firstMismatch(_ x: UnsafeRawBufferPointer, _ y: UnsafeRawBufferPointer) -> Int? {
    let n = min(x.count, y.count)
    guard n > 0, let p = x.baseAddress, let q = y.baseAddress else { return nil }
    if memcmp(p, q, n) == 0 { return nil }
    let step = 4096
    var i = 0
    while i + step <= n && memcmp(p + i, q + i, step) == 0 { i += step }
    while i < n && x[i] == y[i] { i += 1 }
    return i < n ? i : nil
}

/// Index of the first non-zero byte of `x`; the word-wise zero check first, then narrowed.
func firstNonZero(_ x: UnsafeRawBufferPointer) -> Int? {
    if isAllZero(x) { return nil }
    let step = 4096
    var i = 0
    while i + step <= x.count && isAllZero(UnsafeRawBufferPointer(rebasing: x[i..<i + step])) { i += step }
    while i < x.count && x[i] == 0 { i += 1 }
    return i < x.count ? i : nil
}
