import VHDX
import VHDXChangeTracking
import VHDXFormat

/// What `optimize` did.
public struct SetOptimizeResult: Sendable {
    /// Entries dropped: invalid ones and reference points whose change ID no longer answers.
    public var droppedEntries: [GUID] = []
    /// Retained files folded now that at most one branch reads through them.
    public var folded: [GUID] = []
    public var droppedAliases = 0
    /// Set file size before and after.
    public var bytesBefore: UInt64 = 0
    public var bytesAfter: UInt64 = 0
}

extension VHDSet {
    /// Optimize-VHDSet: folds retained files that at most one branch still reads through,
    /// drops invalid entries, reference points and aliases whose change ID the active leaf can
    /// no longer answer (expired, reset, on another branch), then rewrites both copies of the
    /// set file and cuts it to its end.
    public func optimize() throws(VHDXError) -> SetOptimizeResult {
        var result = SetOptimizeResult()
        result.bytesBefore = try file.storage.size()
        while let s = record.snapshots.first(where: { $0.isRetained && dependantCount($0.id) <= 1 }) {
            _ = try delete(s.id, keepReference: s.changeID != nil)
            result.folded.append(s.id)
        }
        var next = record
        next.snapshots.removeAll { e in
            guard !e.isValid else { return false }
            result.droppedEntries.append(e.id)
            return true
        }
        let pruned = try prune(&next, keepOtherBranches: false)
        result.droppedEntries += pruned.entries
        result.droppedAliases = pruned.aliases
        try commit(next)
        try file.compact()
        result.bytesAfter = try file.storage.size()
        return result
    }

    func dependantCount(_ id: GUID) -> Int { record.dependantPaths(of: id).count }

    /// Drops from `next` the reference points and aliases whose change ID the set cannot
    /// answer. `optimize` drops every one the active leaf cannot answer (another branch's
    /// too); the automatic pruning of `checkpoint` (`keepOtherBranches`) only those that can
    /// never answer again: refused by the file of the leaf's chain that sealed them (expired
    /// from its history, reset, never sealed there) or sealed by no file the set has, so an
    /// ID of a branch `apply` may return to stays. When the leaf's chain cannot be opened (or,
    /// keeping other branches, a file of theirs cannot be opened), nothing is decided and
    /// nothing dropped. An I/O error is thrown instead: what a device that fails now would have
    /// said is unknown, and the operation fails rather than completing with less done.
    func prune(_ next: inout SetRecord, keepOtherBranches: Bool) throws(VHDXError) -> (entries: [GUID], aliases: Int) {
        let ids = next.snapshots.filter(\.isReferenceOnly).compactMap(\.changeID) + next.aliases.map(\.target)
        var lost: Set<ChangeID> = []
        if !ids.isEmpty {
            guard let l = try unanswerable(Set(ids), keepOtherBranches: keepOtherBranches) else { return ([], 0) }
            lost = l
        }
        var entries: [GUID] = []
        next.snapshots.removeAll { e in
            let drop = e.isReferenceOnly && (e.changeID.map(lost.contains) ?? true)
            if drop { entries.append(e.id) }
            return drop
        }
        let before = next.aliases.count
        next.aliases.removeAll { lost.contains($0.target) }
        return (entries, before - next.aliases.count)
    }

    /// The IDs of `ids` the set cannot answer (see `prune`); nil when that cannot be decided.
    /// The leaf's chain is opened once for all of them.
    func unanswerable(_ ids: Set<ChangeID>, keepOtherBranches: Bool) throws(VHDXError) -> Set<ChangeID>? {
        let top: VHDXFile
        do { top = try openLeaf() } catch {
            if error.code == .io { throw error }
            return nil
        }
        var chainTracking: Set<GUID> = []
        for layer in top.chain {
            do {
                if let t = try ChangeTracker.view(of: layer, observe: false) { chainTracking.insert(t.header.trackingID) }
            } catch {
                if error.code == .io { throw error }
                return nil
            }
        }
        var offChainTracking: Set<GUID>?
        var out = Set<ChangeID>()
        for id in ids {
            do {
                _ = try changes(in: top, since: id, maxRanges: 1)
                continue
            } catch let e as ChangeTrackingError where e.reason != .engine {
                // Refused: decided below.
            } catch {
                if let e = VHDXError.carried(by: error), e.code == .io { throw e }
                if keepOtherBranches { return nil }
            }
            if keepOtherBranches {
                let sealedBy = throughAliases(id).0.trackingID
                if !chainTracking.contains(sealedBy) {
                    if offChainTracking == nil { offChainTracking = try offChainTrackingIDs() }
                    guard let off = offChainTracking else { return nil }
                    if off.contains(sealedBy) { continue }
                }
            }
            out.insert(id)
        }
        return out
    }

    /// The tracking ids of the set's files off the leaf's chain (other branches); nil when one
    /// cannot be read.
    private func offChainTrackingIDs() throws(VHDXError) -> Set<GUID>? {
        let onChain = Set(record.leafAncestry())
        var out: Set<GUID> = []
        for e in record.snapshots where e.hasFile && !onChain.contains(e.id) {
            do {
                if let t = try ChangeTracker.view(of: VHDXFile.openFile(path: contained(e.path)), observe: false) { out.insert(t.header.trackingID) }
            } catch {
                if error.code == .io { throw error }
                return nil
            }
        }
        return out
    }
}
