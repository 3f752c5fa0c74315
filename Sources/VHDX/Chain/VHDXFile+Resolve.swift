import VHDXFormat

/// A run of the disk as the whole chain presents it: which layer answers for it and how.
public struct ResolvedExtent: Equatable, Sendable {
    /// Where the extent starts on the virtual disk.
    public var virtualOffset: UInt64
    /// Its length in bytes.
    public var length: UInt64
    /// `.data`: the bytes are at `fileOffset` in `chain[layer]`. Every other kind reads as
    /// zeros: `.zero`, `.unmapped`, `.undefined` by that layer's block state, `.notPresent`
    /// where no layer holds the bytes (the bottom image's unallocated blocks, or the part of a
    /// larger child beyond its parent's end).
    public var kind: Extent.Kind
    /// Which layer of the chain answers for it (0: the top image).
    public var layer: Int
    /// Where its bytes are in that layer's file (nil: they read as zeros).
    public var fileOffset: UInt64?

    /// Where the extent ends on the virtual disk.
    public var end: UInt64 { virtualOffset + length }
}

extension VHDXFile {
    /// Calls `body` with the resolved extents of [start, end) in order, adjacent ones of the
    /// same kind and layer (and contiguous file space, for data) merged. Memory stays flat.
    public func forEachResolvedExtent(from start: UInt64 = 0, to end: UInt64? = nil,
                                      _ body: (ResolvedExtent) throws(VHDXError) -> Void) throws(VHDXError) {
        let end = min(end ?? virtualSize, virtualSize)
        guard start < end else { return }
        var pending: ResolvedExtent?
        try resolve(start, end, layer: 0) { (e) throws(VHDXError) in
            if var p = pending, p.kind == e.kind, p.layer == e.layer, p.end == e.virtualOffset,
               p.fileOffset == nil ? e.fileOffset == nil : p.fileOffset.map({ $0 + p.length }) == e.fileOffset {
                p.length += e.length
                pending = p
                return
            }
            if let p = pending { try body(p) }
            pending = e
        }
        if let p = pending { try body(p) }
    }

    /// Resolved extents of [start, end) as an array (for small ranges and tests).
    public func resolvedExtents(from start: UInt64 = 0, to end: UInt64? = nil) throws(VHDXError) -> [ResolvedExtent] {
        var out: [ResolvedExtent] = []
        try forEachResolvedExtent(from: start, to: end) { out.append($0) }
        return out
    }

    private func resolve(_ start: UInt64, _ end: UInt64, layer: Int, _ emit: (ResolvedExtent) throws(VHDXError) -> Void) throws(VHDXError) {
        var v = start
        while v < end {
            let block = v / blockSize
            let inBlock = v % blockSize
            let n = min(end - v, blockSize - inBlock)
            let entry = try payloadEntry(block: block)
            func here(_ kind: Extent.Kind, _ at: UInt64, _ count: UInt64, file: UInt64? = nil) -> ResolvedExtent {
                ResolvedExtent(virtualOffset: at, length: count, kind: kind, layer: layer, fileOffset: file)
            }
            switch PayloadBlockState(rawValue: entry.state) {
            case .fullyPresent:
                try emit(here(.data, v, n, file: try payloadOffset(entry, block: block) + inBlock))
            case .zero: try emit(here(.zero, v, n))
            case .unmapped, .unmappedV095: try emit(here(.unmapped, v, n))
            case .undefined: try emit(here(.undefined, v, n))
            case .notPresent:
                if diskType == .differencing { try resolveInParent(v, v + n, layer: layer, emit) } else { try emit(here(.notPresent, v, n)) }
            case .partiallyPresent:
                guard diskType == .differencing else {
                    throw VHDXError(.corrupt, "block \(block) is PARTIALLY_PRESENT, a state only a differencing disk may hold", path: storage.name,
                                    at: layout.batRegion.fileOffset + geometry.payloadIndex(block: block) * 8)
                }
                let base = block * blockSize
                let file = try payloadOffset(entry, block: block)
                try forEachBitmapRun(block: block, inBlock: inBlock, count: n) { (present, a, b) throws(VHDXError) in
                    if present {
                        try emit(here(.data, base + a, b - a, file: file + a))
                    } else {
                        try resolveInParent(base + a, base + b, layer: layer, emit)
                    }
                }
            case nil:
                throw VHDXError(.corrupt, "block \(block) has invalid BAT state \(entry.state)", path: storage.name,
                                at: layout.batRegion.fileOffset + geometry.payloadIndex(block: block) * 8)
            }
            v += n
        }
    }

    /// Where a present block's bytes start in the file: never in the header section, and the
    /// whole block addressable (a damaged entry is an error here, not a read of wrong bytes).
    private func payloadOffset(_ entry: BATEntry, block: UInt64) throws(VHDXError) -> UInt64 {
        let at = layout.batRegion.fileOffset + geometry.payloadIndex(block: block) * 8
        guard entry.fileOffset >= Layout.headerSectionSize else {
            throw VHDXError(.corrupt, "block \(block) is present but its file offset \(entry.fileOffset) lies in the header section",
                            path: storage.name, at: at)
        }
        guard entry.fileOffset <= UInt64(Int64.max) - blockSize else {
            throw VHDXError(.corrupt, "block \(block) has file offset \(entry.fileOffset), beyond any file", path: storage.name, at: at)
        }
        return entry.fileOffset
    }

    private func resolveInParent(_ start: UInt64, _ end: UInt64, layer: Int, _ emit: (ResolvedExtent) throws(VHDXError) -> Void) throws(VHDXError) {
        guard let parent else {
            throw VHDXError(.parentNotFound, "virtual offset \(start) of this differencing image is in its parent, which is not open", path: storage.name)
        }
        let split = min(end, max(start, parent.virtualSize))
        if start < split { try parent.resolve(start, split, layer: layer + 1, emit) }
        if split < end {
            try emit(ResolvedExtent(virtualOffset: split, length: end - split, kind: .notPresent, layer: layer, fileOffset: nil))
        }
    }
}
