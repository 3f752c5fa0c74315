import CZlib

/// zlib (RFC 1950) one-shot compression of a record's payload, from the system library.
enum Deflate {
    /// Level 1: the export's job is to keep up with the disk; higher levels gain a few percent
    /// at several times the time (measured in Scripts/bench-export.sh).
    static let level: Int32 = 1
    /// Bytes sampled to decide whether a payload is worth compressing.
    static let probeBytes = 32 << 10

    /// The payload compressed, or nil when it would not be at least 1/32 smaller: a sample is
    /// tried first, so incompressible data (random, already compressed) costs a probe, not a
    /// full deflate.
    static func compressIfWorth(_ data: UnsafeRawBufferPointer) -> [UInt8]? {
        guard data.count > 0 else { return nil }
        if data.count > 2 * probeBytes {
            let mid = (data.count / 2) & ~4095
            guard let probe = compress(UnsafeRawBufferPointer(rebasing: data[mid..<mid + probeBytes])),
                  probe.count < probeBytes - probeBytes / 16 else { return nil }
        }
        guard let out = compress(data), out.count < data.count - data.count / 32 else { return nil }
        return out
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
