import VHDXFormat

/// How an epoch's set is stored in a slot: as a run list, or as a bitmap (bit *g* set: granule
/// *g* changed) when that is smaller, so a scattered set of a small disk is kept exactly. Only
/// a set that fits neither way is coarsened (TRACKING-FORMAT.md §3).
public enum StoredSet {
    public enum Flag {
        /// Merged to fit its slot: covers more than was written.
        public static let coarsened: UInt32 = 1
        /// A bitmap; the count is its length in bytes.
        public static let bitmap: UInt32 = 2
    }

    public struct Encoded: Equatable, Sendable {
        public var bytes: [UInt8]
        /// Runs, or bitmap bytes.
        public var count: UInt32
        public var flags: UInt32
        public var checksum: UInt32
    }

    /// The smaller encoding of `runs` that fits `slotBytes`, coarsening the runs if neither does.
    public static func encode(_ runs: [GranuleRun], slotBytes: Int) -> Encoded {
        let runBytes = runs.count * RunList.runSize
        let bitmapBytes = Int(((runs.last?.end ?? 0) + 7) / 8)
        if bitmapBytes < runBytes && bitmapBytes <= slotBytes {
            var bits = [UInt8](repeating: 0, count: bitmapBytes)
            for r in runs { SectorBitmap.set(&bits, Int(r.start)..<Int(r.end)) }
            let padded = bits + [UInt8](repeating: 0, count: (4096 - bitmapBytes % 4096) % 4096)
            return Encoded(bytes: padded, count: UInt32(bitmapBytes), flags: Flag.bitmap, checksum: CRC32C.checksum(bits))
        }
        var list = runs
        var flags: UInt32 = 0
        let capacity = slotBytes / RunList.runSize
        if list.count > capacity {
            list = RunList.coarsen(list, to: capacity)
            flags |= Flag.coarsened
        }
        return Encoded(bytes: RunList.encode(list), count: UInt32(list.count), flags: flags, checksum: RunList.checksum(list))
    }

    /// Bytes a stored set of `count` occupies, by its flags.
    public static func byteCount(count: UInt32, flags: UInt32) -> Int {
        flags & Flag.bitmap != 0 ? Int(count) : Int(count) * RunList.runSize
    }

    /// Decodes and checks a stored set (checksum, order, bounds).
    public static func decode(_ bytes: [UInt8], count: UInt32, flags: UInt32, checksum: UInt32, granuleLimit: UInt64, base: UInt64) throws(FormatError) -> [GranuleRun] {
        guard flags & Flag.bitmap != 0 else {
            return try RunList.decode(bytes, count: Int(count), checksum: checksum, granuleLimit: granuleLimit, base: base)
        }
        let s = "tracking bitmap"
        let n = Int(count)
        guard bytes.count >= n else { throw FormatError(.truncated, s, at: base, "\(n) bytes expected") }
        let computed = CRC32C.checksum(bytes.prefix(n))
        guard computed == checksum else {
            throw FormatError(.badChecksum, s, at: base, "stored 0x\(String(checksum, radix: 16)), computed 0x\(String(computed, radix: 16))")
        }
        guard UInt64(n) * 8 <= granuleLimit + 7 else { throw FormatError(.outOfRange, s, at: base, "\(n) bytes cover more than \(granuleLimit) granules") }
        return bytes.withUnsafeBytes { b in
            SectorBitmap.runs(UnsafeRawBufferPointer(rebasing: b[0..<n]), first: 0, count: n * 8)
                .filter(\.present).map { GranuleRun(start: UInt64($0.bits.lowerBound), count: UInt64($0.bits.count)) }
        }
    }
}
