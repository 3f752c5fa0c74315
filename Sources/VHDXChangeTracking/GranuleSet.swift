import VHDXFormat

/// The granules changed in the open epoch, in memory: a sparse two-level bitmap, so marking a
/// granule is O(1) whatever the disk size, and memory follows what was written (a leaf of 512
/// bytes per 4,096-granule range touched, none for ranges written whole).
struct GranuleSet {
    static let leafGranules: UInt64 = 4096
    static let wordsPerLeaf = Int(leafGranules / 64)

    enum Leaf {
        case full
        case partial([UInt64])
    }

    private(set) var leaves: [UInt64: Leaf] = [:]

    var isEmpty: Bool { leaves.isEmpty }

    /// Marks granules [range).
    mutating func insert(_ range: Range<UInt64>) {
        guard !range.isEmpty else { return }
        var g = range.lowerBound
        while g < range.upperBound {
            let leaf = g / GranuleSet.leafGranules
            let leafStart = leaf * GranuleSet.leafGranules
            let upTo = min(range.upperBound, leafStart + GranuleSet.leafGranules)
            if g == leafStart && upTo == leafStart + GranuleSet.leafGranules {
                leaves[leaf] = .full
            } else {
                setBits(leaf: leaf, Int(g - leafStart)..<Int(upTo - leafStart))
            }
            g = upTo
        }
    }

    mutating func insert(_ runs: [GranuleRun]) {
        for r in runs { insert(r.start..<r.end) }
    }

    private mutating func setBits(leaf: UInt64, _ bits: Range<Int>) {
        var words: [UInt64]
        switch leaves[leaf] {
        case .full: return
        case .partial(let w): words = w
        case nil: words = [UInt64](repeating: 0, count: GranuleSet.wordsPerLeaf)
        }
        leaves[leaf] = nil  // keep `words` uniquely referenced while it changes
        var b = bits.lowerBound
        while b < bits.upperBound {
            let w = b / 64, first = b % 64
            let n = min(64 - first, bits.upperBound - b)
            let mask = n == 64 ? UInt64.max : ((UInt64(1) << UInt64(n)) - 1) << UInt64(first)
            words[w] |= mask
            b += n
        }
        leaves[leaf] = words.allSatisfy({ $0 == .max }) ? .full : .partial(words)
    }

    /// Drops every granule at or past `limit` (a disk that shrank).
    mutating func clip(below limit: UInt64) {
        for (leaf, value) in leaves where (leaf + 1) * GranuleSet.leafGranules > limit {
            let leafStart = leaf * GranuleSet.leafGranules
            if leafStart >= limit { leaves[leaf] = nil; continue }
            var words: [UInt64]
            switch value {
            case .full: words = [UInt64](repeating: .max, count: GranuleSet.wordsPerLeaf)
            case .partial(let w): words = w
            }
            let keep = Int(limit - leafStart)
            for w in 0..<GranuleSet.wordsPerLeaf {
                let lo = w * 64
                if lo >= keep { words[w] = 0 } else if lo + 64 > keep { words[w] &= (UInt64(1) << UInt64(keep - lo)) - 1 }
            }
            leaves[leaf] = words.allSatisfy({ $0 == 0 }) ? nil : .partial(words)
        }
    }

    /// The set as sorted, merged runs.
    func runs() -> [GranuleRun] {
        var out: [GranuleRun] = []
        func add(_ start: UInt64, _ end: UInt64) {
            if let last = out.last, last.end == start { out[out.count - 1].count = end - last.start } else { out.append(GranuleRun(start: start, count: end - start)) }
        }
        for leaf in leaves.keys.sorted() {
            let base = leaf * GranuleSet.leafGranules
            switch leaves[leaf]! {
            case .full:
                add(base, base + GranuleSet.leafGranules)
            case .partial(let words):
                var runStart: UInt64? = nil
                for w in 0..<words.count {
                    let word = words[w]
                    if word == 0 {
                        if let s = runStart { add(s, base + UInt64(w * 64)); runStart = nil }
                        continue
                    }
                    if word == .max {
                        if runStart == nil { runStart = base + UInt64(w * 64) }
                        continue
                    }
                    for bit in 0..<64 {
                        let set = word >> UInt64(bit) & 1 == 1
                        let g = base + UInt64(w * 64 + bit)
                        if set && runStart == nil { runStart = g }
                        if !set, let s = runStart { add(s, g); runStart = nil }
                    }
                }
                if let s = runStart { add(s, base + GranuleSet.leafGranules) }
            }
        }
        return out
    }
}
