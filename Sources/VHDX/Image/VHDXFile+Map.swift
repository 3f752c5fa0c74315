import VHDXFormat

/// A run of virtual bytes that share a block state (and, for data, contiguous file space).
public struct Extent: Equatable, Sendable {
    /// A block state, as `map` names it.
    public enum Kind: String, Sendable {
        /// Stored in this file (FULLY_PRESENT).
        case data
        /// Reads as zeros (ZERO).
        case zero
        /// Discarded; reads as zeros (UNMAPPED).
        case unmapped
        /// Not in this file: zeros, or the parent's bytes in a differencing image (NOT_PRESENT).
        case notPresent = "not-present"
        /// Some sectors here, the rest from the parent (PARTIALLY_PRESENT).
        case partial
        /// Reads as zeros (UNDEFINED).
        case undefined
        /// A state the format does not define (a damaged BAT entry).
        case invalid
    }
    /// Where the extent starts on the virtual disk.
    public var virtualOffset: UInt64
    /// Its length in bytes.
    public var length: UInt64
    /// Its block state.
    public var kind: Kind
    /// Where the bytes are in the file, for data and partial extents.
    public var fileOffset: UInt64?
}

/// What the BAT says, counted over the whole disk.
public struct AllocationSummary: Sendable {
    /// Payload blocks by the state they are in.
    public var blockCounts: [Extent.Kind: UInt64] = [:]
    /// Sector-bitmap blocks allocated (differencing images only).
    public var sectorBitmapBlocks: UInt64 = 0
    /// Bytes of file space held by payload and sector-bitmap blocks.
    public var allocatedBytes: UInt64 = 0
    /// Percentage of allocated blocks that do not follow their predecessor in the file.
    public var fragmentationPercent: Double = 0
}

extension Extent.Kind {
    init(state: UInt8) {
        switch PayloadBlockState(rawValue: state) {
        case .fullyPresent: self = .data
        case .partiallyPresent: self = .partial
        case .zero: self = .zero
        case .unmapped, .unmappedV095: self = .unmapped
        case .notPresent: self = .notPresent
        case .undefined: self = .undefined
        case nil: self = .invalid
        }
    }
}

extension VHDXFile {
    /// Calls `body` with the extents covering the whole disk, adjacent runs of the same kind
    /// merged (data only when their file space is contiguous too). Streams: memory stays flat.
    public func forEachExtent(_ body: (Extent) throws(VHDXError) -> Void) throws(VHDXError) {
        var pending: Extent?
        let g = geometry
        for block in 0..<g.dataBlockCount {
            let entry = try payloadEntry(block: block)
            let start = block * g.blockSize
            let length = min(g.blockSize, virtualSize - start)
            let kind = Extent.Kind(state: entry.state)
            let file: UInt64? = (kind == .data || kind == .partial) ? entry.fileOffset : nil
            if var p = pending, p.kind == kind,
               file == nil ? p.fileOffset == nil : p.fileOffset.map({ $0 &+ p.length }) == file {
                p.length += length
                pending = p
                continue
            }
            if let p = pending { try body(p) }
            pending = Extent(virtualOffset: start, length: length, kind: kind, fileOffset: file)
        }
        if let p = pending { try body(p) }
    }

    /// This file's own block states over the whole disk, adjacent runs of one state merged
    /// (data only when contiguous in the file too).
    public func extents() throws(VHDXError) -> [Extent] {
        var out: [Extent] = []
        try forEachExtent { out.append($0) }
        return out
    }

    /// Block-state counts, allocated space and fragmentation, from one pass over the BAT.
    public func allocationSummary() throws(VHDXError) -> AllocationSummary {
        var s = AllocationSummary()
        let g = geometry
        var allocated: UInt64 = 0
        var fragmented: UInt64 = 0
        var previousEnd: UInt64?
        var byState = [UInt64](repeating: 0, count: 8)
        // Walk payload slots chunk by chunk instead of classifying every index: on a 64 TiB
        // disk this loop is all that info does.
        let cr = g.chunkRatio
        let blocks = g.dataBlockCount
        var slot: UInt64 = 0, block: UInt64 = 0
        try bat.forEachPage { (_, raw) throws(VHDXError) in
            for k in 0..<raw.count / 8 {
                let entry = BATEntry.load(from: raw, index: k)
                if slot == cr {
                    slot = 0
                    if entry.state == SectorBitmapState.present.rawValue {
                        s.sectorBitmapBlocks += 1
                        s.allocatedBytes += Layout.sectorBitmapBlockSize
                    }
                    continue
                }
                slot += 1
                block += 1
                guard block <= blocks else { continue }
                let state = Int(entry.state)
                byState[state] += 1
                if state >= 6 {
                    let offset = entry.fileOffset
                    allocated += 1
                    if let previousEnd, previousEnd != offset { fragmented += 1 }
                    previousEnd = offset &+ g.blockSize
                }
            }
        }
        for state in 0..<8 where byState[state] > 0 {
            s.blockCounts[Extent.Kind(state: UInt8(state)), default: 0] += byState[state]
        }
        s.allocatedBytes += allocated * g.blockSize
        s.fragmentationPercent = allocated > 1 ? Double(fragmented) * 100 / Double(allocated - 1) : 0
        return s
    }
}
