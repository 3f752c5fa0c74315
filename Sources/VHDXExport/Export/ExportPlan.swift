import VHDX
import VHDXChangeTracking

/// The ranges an export covers, in order: ranges to read (their all-zero digest blocks still
/// become zero records) and ranges known to read as zeros without reading them.
struct ExportPlan {
    struct Segment: Equatable {
        var offset: UInt64
        var length: UInt64
        var read: Bool
    }

    var segments: [Segment] = []
    var readBytes: UInt64 { segments.filter(\.read).reduce(0) { $0 + $1.length } }

    /// A full export: what the chain holds as data is read (rounded out to digest blocks),
    /// everything else is a zero record.
    static func full(_ image: VHDXFile, digestBlock d: UInt64) throws(VHDXError) -> ExportPlan {
        var data: [ChangedRange] = []
        try image.forEachResolvedExtent { (e) throws(VHDXError) in
            guard e.kind == .data || e.kind == .partial else { return }
            data.append(ChangedRange(offset: e.virtualOffset, length: e.length))
        }
        return covering(rounded(data, d, size: image.virtualSize), size: image.virtualSize)
    }

    /// An incremental: the changed ranges, rounded out to digest blocks, all read; a disk that
    /// grew since the base (when its size is known) also has its new end read.
    static func incremental(_ changes: [ChangedRange], digestBlock d: UInt64, size: UInt64, baseSize: UInt64?) -> ExportPlan {
        var ranges = changes
        if let baseSize, baseSize < size { ranges.append(ChangedRange(offset: baseSize, length: size - baseSize)) }
        ranges.sort { $0.offset < $1.offset }
        return ExportPlan(segments: rounded(ranges, d, size: size).map { Segment(offset: $0.offset, length: $0.length, read: true) })
    }

    /// Sorted ranges widened to whole digest blocks (the last one may end at the disk's end),
    /// clipped to the disk, touching ones joined.
    static func rounded(_ ranges: [ChangedRange], _ d: UInt64, size: UInt64) -> [ChangedRange] {
        var out: [ChangedRange] = []
        for r in ranges where r.offset < size {
            let start = r.offset / d * d
            let end = min(size, (min(r.end, size) + d - 1) / d * d)
            if let last = out.last, start <= last.end {
                out[out.count - 1].length = max(last.end, end) - last.offset
            } else {
                out.append(ChangedRange(offset: start, length: end - start))
            }
        }
        return out
    }

    /// `data` read, the gaps between as zero segments, from 0 to `size`.
    static func covering(_ data: [ChangedRange], size: UInt64) -> ExportPlan {
        var plan = ExportPlan()
        var at: UInt64 = 0
        for r in data {
            if r.offset > at { plan.segments.append(Segment(offset: at, length: r.offset - at, read: false)) }
            plan.segments.append(Segment(offset: r.offset, length: r.length, read: true))
            at = r.end
        }
        if at < size { plan.segments.append(Segment(offset: at, length: size - at, read: false)) }
        return plan
    }
}
