internal import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// zlib (RFC 1950) one-shot compression of a record's payload, from the system library.
enum Deflate {
    /// Level 1: the export's job is to keep up with the disk; higher levels gain a few percent
    /// at several times the time (measured in Scripts/bench-export.sh).
    static let level: Int32 = 1
    /// Bytes sampled (4 pieces of 4 KiB) to decide whether a payload is worth compressing.
    static let probePiece = 4096

    /// The payload compressed, or nil when it would not be at least 1/32 smaller. Data whose
    /// sampled bytes are spread almost evenly over all 256 values (random, encrypted, already
    /// compressed) is not tried at all: zlib on such data runs at a tenth of the disk's speed
    /// and gains nothing. The byte histogram costs a pass over 16 KiB, a deflate of the same
    /// sample about thirty times more.
    static func compressIfWorth(_ data: UnsafeRawBufferPointer) -> [UInt8]? {
        guard data.count > 0 else { return nil }
        if data.count >= 8 * probePiece, looksIncompressible(data) { return nil }
        guard let out = compress(data), out.count < data.count - data.count / 32 else { return nil }
        return out
    }

    /// Order-0 entropy of four 4 KiB samples above 7.9 bits a byte (a 1.3% gain at best).
    static func looksIncompressible(_ data: UnsafeRawBufferPointer) -> Bool {
        var counts = [Int](repeating: 0, count: 256)
        var total = 0
        for k in 0..<4 {
            let start = (data.count - probePiece) * k / 3 & ~4095
            for b in UnsafeRawBufferPointer(rebasing: data[start..<start + probePiece]) { counts[Int(b)] += 1 }
            total += probePiece
        }
        var bits = 0.0
        for c in counts where c > 0 {
            let p = Double(c) / Double(total)
            bits -= p * log2(p)
        }
        return bits > 7.9
    }

    static func compress(_ data: UnsafeRawBufferPointer) -> [UInt8]? {
        var bound = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(bound))
        let rc = out.withUnsafeMutableBytes { o in
            compress2(o.baseAddress!.assumingMemoryBound(to: Bytef.self), &bound,
                      data.baseAddress!.assumingMemoryBound(to: Bytef.self), uLong(data.count), level)
        }
        guard rc == Z_OK else { return nil }
        out.removeSubrange(Int(bound)...)
        return out
    }

    /// Inflates `data` into `out`, which it must fill exactly; false when it is not a zlib
    /// stream of exactly that many bytes.
    static func decompress(_ data: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Bool {
        guard data.count > 0, out.count > 0 else { return false }
        var length = uLong(out.count)
        var sourceLength = uLong(data.count)
        let rc = uncompress2(out.baseAddress!.assumingMemoryBound(to: Bytef.self), &length,
                             data.baseAddress!.assumingMemoryBound(to: Bytef.self), &sourceLength)
        return rc == Z_OK && length == uLong(out.count) && sourceLength == uLong(data.count)
    }
}
