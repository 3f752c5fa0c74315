#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX
import VHDXFormat
import VHDXChangeTracking

/// A small tracked disk in memory and a byte model of its content, for the tracking tests.
enum TrackedDisk {
    static let granule: UInt64 = 64 << 10

    /// A 16 MiB dynamic disk (1 MiB blocks, 512-byte sectors) with tracking enabled.
    static func make(size: UInt64 = 16 << 20, history: UInt32 = 4, granule: UInt64 = granule) throws -> MemoryStorage {
        let m = MemoryStorage(maxSize: 1 << 34)
        var o = CreateOptions(virtualSize: size)
        o.blockSize = 1 << 20
        try VHDXCreator.create(on: m, options: o)
        let image = try VHDXFile(storage: m)
        try ChangeTracking.enable(image, granule: granule, history: history)
        try image.close()
        return m
    }

    /// Opens `storage` with its tracker attached (writable storages get it as observer).
    static func open(_ storage: Storage) throws -> (VHDXFile, ChangeTracker) {
        let image = try VHDXFile(storage: storage)
        return (image, try ChangeTracking.tracker(of: image))
    }

    /// The whole virtual disk.
    static func content(_ image: VHDXFile) throws -> [UInt8] {
        try image.read(at: 0, count: Int(image.virtualSize))
    }

    /// Granules in which `a` and `b` differ (over the longer; missing bytes read as zero).
    /// Compared a granule at a time with memcmp: a byte loop over 8–16 MiB per sealed ID and
    /// crash point was most of the crash tests' time in a debug build.
    static func differingGranules(_ a: [UInt8], _ b: [UInt8], granule: UInt64 = granule) -> Set<UInt64> {
        var out = Set<UInt64>()
        let n = max(a.count, b.count)
        let common = min(a.count, b.count)
        let longer = a.count >= b.count ? a : b
        let g = Int(granule)
        let zeros = [UInt8](repeating: 0, count: g)
        a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in
                longer.withUnsafeBytes { l in
                    var start = 0
                    while start < n {
                        let end = min(n, start + g)
                        // Where both have bytes, compare them; past the shorter, the longer's must be zero.
                        let shared = max(0, min(end, common) - start)
                        var differs = shared > 0 && memcmp(x.baseAddress! + start, y.baseAddress! + start, shared) != 0
                        if !differs && end > max(start, common) {
                            let from = max(start, common)
                            differs = zeros.withUnsafeBytes { z in memcmp(l.baseAddress! + from, z.baseAddress!, end - from) != 0 }
                        }
                        if differs { out.insert(UInt64(start) / granule) }
                        start = end
                    }
                }
            }
        }
        return out
    }

    /// Granules covered by an answer's ranges.
    static func granules(_ answer: ChangeAnswer, granule: UInt64 = granule) -> Set<UInt64> {
        var out = Set<UInt64>()
        for r in answer.ranges {
            var g = r.offset / granule
            while g * granule < r.end { out.insert(g); g += 1 }
        }
        return out
    }
}
