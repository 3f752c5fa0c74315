import VHDXFormat

/// What must hold of a whole record beyond each field's own bounds: one id per snapshot, every
/// parent an existing snapshot with a file, no cycle, the leaf's parent a snapshot with a file,
/// a reference point without file and a snapshot with one, no file named twice.
enum SetRecordRules {
    static func check(_ r: SetRecord, at offset: UInt64) throws(FormatError) {
        func bad(_ field: String, _ why: String) -> FormatError {
            FormatError(.inconsistent, SetRecordCodec.structure, field: field, at: offset, why)
        }
        guard !r.setID.isZero else { throw bad("set id", "the set id is zero") }
        var ids = Set<GUID>()
        for e in r.snapshots {
            guard !e.id.isZero, ids.insert(e.id).inserted else { throw bad("snapshot id", "snapshot {\(e.id)} is zero or listed twice") }
            if e.isReferenceOnly {
                guard e.path.isEmpty, e.frozenDataWriteGUID.isZero, !e.isRetained else {
                    throw bad("snapshot flags", "reference point {\(e.id)} names a file or is also retained")
                }
            } else {
                guard !e.path.isEmpty, !e.frozenDataWriteGUID.isZero else {
                    throw bad("snapshot path", "snapshot {\(e.id)} has no file or no recorded DataWriteGuid")
                }
            }
        }
        let byID = Dictionary(uniqueKeysWithValues: r.snapshots.map { ($0.id, $0) })
        func fileParent(_ p: GUID, _ field: String, of what: String) throws(FormatError) {
            guard !p.isZero else { return }
            guard let e = byID[p], e.hasFile else { throw bad(field, "the parent {\(p)} of \(what) is not a snapshot with a file") }
        }
        for e in r.snapshots where e.hasFile { try fileParent(e.parent, "snapshot parent", of: "snapshot {\(e.id)}") }
        try fileParent(r.leafParent, "leaf parent", of: "the active leaf")
        // Each file's ancestry ends at the root within as many steps as there are snapshots.
        for e in r.snapshots where e.hasFile {
            var p = e.parent, steps = 0
            while !p.isZero {
                steps += 1
                guard steps <= r.snapshots.count, let next = byID[p] else { throw bad("snapshot parent", "snapshot {\(e.id)}'s parents form a cycle") }
                p = next.parent
            }
        }
        let paths = r.referencedPaths
        guard Set(paths).count == paths.count else { throw bad("snapshot path", "a backing file is named twice") }
        if let p = r.pending, p.kind == .checkpoint || p.kind == .apply {
            guard !p.newPath.isEmpty, !paths.contains(p.newPath) else { throw bad("pending path", "the pending operation's new file is missing or already referenced") }
        }
        if let p = r.pending, p.kind == .relink {
            guard p.newPath.isEmpty, p.flags == 0, byID[p.snapshot]?.hasFile == true else {
                throw bad("pending snapshot", "a pending relink must name a snapshot with a file, and no new path or flags")
            }
        }
        for u in r.unlinkQueue where paths.contains(u) { throw bad("unlink path", "a file queued for deletion is still referenced") }
    }
}
