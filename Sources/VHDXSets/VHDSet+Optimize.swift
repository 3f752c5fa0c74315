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
            let drop = !e.isValid || (e.isReferenceOnly && !answers(e.changeID))
            if drop { result.droppedEntries.append(e.id) }
            return drop
        }
        let before = next.aliases.count
        next.aliases.removeAll { !answers($0.target) }
        result.droppedAliases = before - next.aliases.count
        try commit(next)
        try file.compact()
        result.bytesAfter = try file.storage.size()
        return result
    }

    func dependantCount(_ id: GUID) -> Int { record.dependantPaths(of: id).count }

    /// Whether the set can still answer changes since `id`.
    func answers(_ id: ChangeID?) -> Bool {
        guard let id else { return false }
        do {
            _ = try changes(since: id, maxRanges: 1)
            return true
        } catch { return false }
    }
}
