import VHDX
import VHDXFormat

/// Change IDs through a differencing chain. A child made from a tracked parent tracks on its
/// own (`followParent`); an ID sealed on an ancestor before the child existed is answered as
/// the ancestor's changes since that ID (the ancestor is frozen since: the chain's linkage
/// checks its DataWriteGuid) plus everything the layers above it hold themselves — what a child
/// holds is exactly what differs from its parent, whatever wrote it.
extension ChangeTracking {
    /// `changes(since:)` for the chain under `top`: answered by the first layer whose tracking
    /// sealed `since`. `until` must be sealed by that same layer, and is only accepted on the
    /// top (an ancestor's later ID predates the layers above it).
    public static func changes(in top: VHDXFile, since: ChangeID, until: ChangeID? = nil, offset: UInt64 = 0,
                               length: UInt64? = nil, maxRanges: Int = .max) throws(ChangeTrackingError) -> ChangeAnswer {
        // A parent accepted with a DataWriteGuid matching neither linkage (opened with
        // ignoreIDMismatch) changed in ways no tracker saw: whatever layer sealed the ID, what
        // the chain reads through that link is not what it read then.
        if let child = top.chain.first(where: { $0.parentLink?.match == .ignored }) {
            throw ChangeTrackingError(.reset, "the chain was opened over a parent whose DataWriteGuid matches neither of \(child.path)'s linkages (\(child.parentLink?.path ?? "its parent") was modified or replaced since the link was made): what it reads has changed outside change tracking; `vhdx reparent --ignore-id-mismatch` records the change (then answered as the whole disk), or take a full backup", path: top.path)
        }
        var above: [ChangedRange] = []
        var anyTracking = false
        for (depth, layer) in top.chain.enumerated() {
            let tracker = try engine { () throws(VHDXError) in try ChangeTracker.view(of: layer, observe: false) }
            anyTracking = anyTracking || tracker != nil
            // Answered by the layer that sealed it, or by the top alone (its own refusal) when
            // there is nowhere else to look.
            if let tracker, tracker.header.trackingID == since.trackingID || (depth == 0 && layer.parent == nil) {
                if depth > 0, until != nil {
                    throw ChangeTrackingError(.unknownID, "an until ID with a since ID sealed on the ancestor \(layer.path) is not supported: its later IDs predate the layers above it", path: top.path)
                }
                let own = try tracker.changes(since: since, until: until)
                var a = ChangedRange.window(ChangedRange.union([own.ranges, above]), offset: offset, length: length,
                                            size: top.virtualSize, maxRanges: maxRanges)
                a.exact = own.exact && depth == 0
                return a
            }
            guard layer.parent != nil else { break }
            if depth == 0, since.virtualDiskID != layer.layout.virtualDiskID {
                throw ChangeTrackingError(.otherDisk, "\(since) was sealed on the disk {\(since.virtualDiskID)}, this is {\(layer.layout.virtualDiskID)}", path: top.path)
            }
            above = ChangedRange.union([above, try engine { () throws(VHDXError) in try ownRanges(of: layer) }])
        }
        if !anyTracking {
            throw ChangeTrackingError(.notEnabled, "change tracking is not enabled on this disk or any of its parents (enable it first)", path: top.path)
        }
        throw ChangeTrackingError(.unknownID, "\(since) was not sealed by the tracking of this disk or of any of its parents", path: top.path)
    }

    /// Every range a differencing layer answers for itself (data, zero or unmapped: anything but
    /// "from the parent"), read from its own BAT and sector bitmaps.
    static func ownRanges(of layer: VHDXFile) throws(VHDXError) -> [ChangedRange] {
        var out: [ChangedRange] = []
        try layer.forEachResolvedExtent { (e) throws(VHDXError) in
            guard e.layer == 0, e.kind != .notPresent else { return }
            if let last = out.last, last.end == e.virtualOffset { out[out.count - 1].length += e.length } else {
                out.append(ChangedRange(offset: e.virtualOffset, length: e.length))
            }
        }
        return out
    }

    /// Enables tracking in a new differencing child when its parent tracks, with the parent's
    /// granule (clamped to the child's block size) and history. Returns whether it did.
    @discardableResult
    public static func followParent(_ child: VHDXFile, parent: VHDXFile) throws(VHDXError) -> Bool {
        guard let p = try ChangeTracker.view(of: parent, observe: false), child.region(ChangeTracker.regionGUID) == nil else { return false }
        let g = min(max(p.header.geometry.granule, UInt64(child.layout.logicalSectorSize)), child.blockSize)
        try enable(child, granule: g, history: p.header.geometry.historyLimit)
        return true
    }
}
