import VHDX
import VHDXChangeTracking
import VHDXFormat

extension VHDSet {
    /// `changes(since:)` for the set's content: through the active leaf's chain, after mapping
    /// an ID sealed in a file that a delete merged away to the ID that now covers it (answers
    /// through an alias are supersets and say `exact: false`).
    public func changes(since: ChangeID, until: ChangeID? = nil, offset: UInt64 = 0, length: UInt64? = nil,
                        maxRanges: Int = .max) throws -> ChangeAnswer {
        try changes(in: try openLeaf(), since: since, until: until, offset: offset, length: length, maxRanges: maxRanges)
    }

    /// `changes(since:)` through `top`, the leaf's chain opened already (to ask many IDs).
    package func changes(in top: VHDXFile, since: ChangeID, until: ChangeID? = nil, offset: UInt64 = 0, length: UInt64? = nil,
                 maxRanges: Int = .max) throws -> ChangeAnswer {
        let (id, aliased) = throughAliases(since)
        if aliased, until != nil {
            throw ChangeTrackingError(.unknownID, "an until ID is not supported with \(since): its file was merged away by a delete, and it is answered through \(id)", path: path)
        }
        do {
            var answer = try ChangeTracking.changes(in: top, since: id, until: until, offset: offset, length: length, maxRanges: maxRanges)
            if aliased { answer.exact = false }
            return answer
        } catch {
            throw namingSnapshot(error, since: since)
        }
    }

    /// `error`, or for an unknown ID that is one of ours on another branch, the error naming
    /// its snapshot.
    private func namingSnapshot(_ error: ChangeTrackingError, since: ChangeID) -> ChangeTrackingError {
        guard error.reason == .unknownID else { return error }
        let ancestry = Set(record.leafAncestry())
        if let s = record.snapshots.first(where: { $0.changeID == since }), !ancestry.contains(s.id) {
            return ChangeTrackingError(.unknownID, "\(since) is the change ID of snapshot {\(s.id)}, which is not an ancestor of the active leaf (it is on another branch since `set apply`); changes between branches are not answered", path: path)
        }
        return error
    }

    /// The ID that answers for `id`: itself, or (sealed in a file a delete merged away) the
    /// one its aliases lead to, and whether an alias was followed.
    func throughAliases(_ since: ChangeID) -> (ChangeID, Bool) {
        var id = since
        var aliased = false
        for _ in 0...record.aliases.count {
            guard let a = record.aliases.first(where: { $0.trackingID == id.trackingID }) else { break }
            id = a.target
            aliased = true
        }
        return (id, aliased)
    }

    /// Seals the active leaf's change ID (`track seal` on a set).
    public func seal() throws(VHDXError) -> ChangeID {
        guard let id = try sealLeaf().0 else {
            throw VHDXError(.invalidArgument, "change tracking is not enabled on the set's active leaf", path: leafPath)
        }
        return id
    }
}
