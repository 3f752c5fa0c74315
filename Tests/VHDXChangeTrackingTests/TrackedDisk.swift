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
    static func differingGranules(_ a: [UInt8], _ b: [UInt8], granule: UInt64 = granule) -> Set<UInt64> {
        var out = Set<UInt64>()
        let n = max(a.count, b.count)
        var g = 0
        while g < n {
            let end = min(n, g + Int(granule))
            for i in g..<end where (i < a.count ? a[i] : 0) != (i < b.count ? b[i] : 0) {
                out.insert(UInt64(g) / granule)
                break
            }
            g = end
        }
        return out
    }

    /// The granules an answer's ranges cover.
    static func granules(_ answer: ChangeAnswer, granule: UInt64 = granule) -> Set<UInt64> {
        var out = Set<UInt64>()
        for r in answer.ranges {
            var g = r.offset / granule
            while g * granule < r.end { out.insert(g); g += 1 }
        }
        return out
    }
}
