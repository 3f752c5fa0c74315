import VHDX
import VHDXFormat

/// `base:allocation` of the served chain, kept as sorted runs of equal flags so a block-status
/// request is a binary search plus the runs it covers, whatever the disk's size: a full map of
/// a 64 TiB sparse disk is one run, not two million BAT lookups per request.
///
/// Built once from the chain (`forEachResolvedExtent`: every layer, sector bitmaps included);
/// a change through the served disk re-resolves only the top file's blocks it touched (only
/// those can change state) and splices them in, so the map is never stale.
struct AllocationMap {
    static let hole: UInt32 = 1   // NBD_STATE_HOLE: no storage holds these bytes
    static let zero: UInt32 = 2   // NBD_STATE_ZERO: they read as zeros

    /// Run i covers [starts[i], starts[i+1]) (the last one up to `size`) with flags[i].
    private(set) var starts: [UInt64] = []
    private(set) var flags: [UInt32] = []
    let size: UInt64

    /// The flags of a resolved extent: data is 0; everything else reads as zeros with no data
    /// of its own (NOT_PRESENT through the whole chain, ZERO, UNMAPPED, UNDEFINED).
    static func flags(of kind: Extent.Kind) -> UInt32 {
        kind == .data ? 0 : hole | zero
    }

    init(of top: VHDXFile) throws(VHDXError) {
        size = top.virtualSize
        guard size > 0 else { return }
        var runs = try AllocationMap.scanBAT(top)
        if runs == nil { runs = try AllocationMap.resolve(top, 0, size) }
        guard let runs else { return }
        starts = runs.map(\.0)
        flags = runs.map(\.1)
    }

    /// Runs of [start, end) as the chain resolves them now, adjacent equal flags merged.
    static func resolve(_ top: VHDXFile, _ start: UInt64, _ end: UInt64) throws(VHDXError) -> [(UInt64, UInt32)] {
        var runs: [(UInt64, UInt32)] = []
        try top.forEachResolvedExtent(from: start, to: end) { e in
            let f = flags(of: e.kind)
            if runs.last?.1 != f { runs.append((e.virtualOffset, f)) }
        }
        return runs
    }

    /// A file without parent, from one pass over its BAT a page at a time (the whole map of a
    /// 64 TiB disk with 32 MiB blocks is two million entries: no per-block lookup). nil when the
    /// chain must be resolved (a differencing file) or an entry is one `resolve` must judge
    /// (a state a file without parent may not hold, an offset in the header section).
    static func scanBAT(_ top: VHDXFile) throws(VHDXError) -> [(UInt64, UInt32)]? {
        guard top.diskType != .differencing, top.parent == nil else { return nil }
        let g = top.geometry
        let blocks = g.dataBlockCount
        var runs: [(UInt64, UInt32)] = []
        var odd = false
        let perChunk = g.chunkRatio + 1  // chunkRatio payload entries, then one sector bitmap entry
        try top.forEachBATPage { (first, raw) in
            guard !odd else { return }
            let count = raw.count / 8
            var k = 0
            while k < count {
                let i = first + UInt64(k)
                let (chunk, slot) = i.quotientAndRemainder(dividingBy: perChunk)
                let block = chunk * g.chunkRatio + slot
                guard block < blocks else { return }
                // The entries left in this chunk (then its sector bitmap entry) and this page.
                let n = min(Int(g.chunkRatio - slot), count - k, Int(blocks - block))
                if slot == g.chunkRatio { k += 1; continue }
                for j in 0..<n {
                    let e = BATEntry.load(from: raw, index: k + j)
                    let f: UInt32
                    switch e.state {
                    case PayloadBlockState.fullyPresent.rawValue where e.fileOffset >= Layout.headerSectionSize: f = 0
                    case PayloadBlockState.notPresent.rawValue, PayloadBlockState.zero.rawValue, PayloadBlockState.unmapped.rawValue,
                         PayloadBlockState.unmappedV095.rawValue, PayloadBlockState.undefined.rawValue: f = hole | zero
                    default: odd = true; return
                    }
                    if runs.last?.1 != f { runs.append(((block + UInt64(j)) * g.blockSize, f)) }
                }
                k += n
            }
        }
        return odd || runs.isEmpty ? nil : runs
    }

    /// The index of the run holding `offset` (< size).
    func run(containing offset: UInt64) -> Int {
        var lo = 0, hi = starts.count  // invariant: starts[lo] <= offset < starts[hi] (hi == count: size)
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if starts[mid] <= offset { lo = mid } else { hi = mid }
        }
        return lo
    }

    func end(of i: Int) -> UInt64 { i + 1 < starts.count ? starts[i + 1] : size }

    /// After a change to [offset, offset+length) of the top file: its blocks there are
    /// resolved again and replace what the map said.
    mutating func refresh(_ top: VHDXFile, offset: UInt64, length: UInt64) throws(VHDXError) {
        guard length > 0, offset < size else { return }
        let bs = top.blockSize
        let a = offset / bs * bs
        let b = min(size, (min(offset + length, size) + bs - 1) / bs * bs)
        replace(a, b, with: try AllocationMap.resolve(top, a, b))
    }

    /// Replaces the runs of [a, b) by `new` (which covers exactly [a, b)), merging equal
    /// neighbours so runs stay maximal.
    mutating func replace(_ a: UInt64, _ b: UInt64, with new: [(UInt64, UInt32)]) {
        let i = run(containing: a)
        var j = run(containing: b - 1)
        var ins: [(UInt64, UInt32)] = []
        if starts[i] < a { ins.append((starts[i], flags[i])) }
        for r in new where ins.last?.1 != r.1 { ins.append(r) }
        if end(of: j) > b, ins.last?.1 != flags[j] { ins.append((b, flags[j])) }
        // The run after j starts at end(of: j), where ins ends now: merge it when equal.
        if j + 1 < starts.count, ins.last?.1 == flags[j + 1] { j += 1 }
        var first = i
        if i > 0, ins.first?.1 == flags[i - 1] { ins.removeFirst(); first = i - 1; ins.insert((starts[i - 1], flags[i - 1]), at: 0) }
        starts.replaceSubrange(first...j, with: ins.map(\.0))
        flags.replaceSubrange(first...j, with: ins.map(\.1))
    }

    /// Extents from `offset`, at most `length` bytes and `maxExtents` descriptors.
    func extents(at offset: UInt64, length: UInt64, alignment: UInt32, maxExtents: Int) -> [BlockStatusExtent] {
        var out = ExtentPieces(alignment: alignment, maxExtents: maxExtents)
        let end = min(size, offset + length)
        guard offset < end else { return [] }
        var i = run(containing: offset)
        var v = offset
        while v < end, i < starts.count {
            let e = min(end, self.end(of: i))
            guard out.append(e - v, flags: flags[i]) else { break }
            v = e
            i += 1
        }
        return out.extents
    }
}
