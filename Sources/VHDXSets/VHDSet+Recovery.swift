#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX
import VHDXFormat

extension VHDSet {
    /// What a writable open does first. A pending checkpoint or apply is rolled back (its new
    /// file, not yet named by the set, is deleted; the set still describes the state before
    /// it); a pending delete or relink is rolled forward (each of its steps runs again
    /// safely). Then the
    /// files queued for deletion are deleted.
    func recover() throws(VHDXError) {
        if let p = record.pending {
            switch p.kind {
            case .checkpoint, .apply:
                if !record.referencedPaths.contains(p.newPath) { try removeFile(p.newPath) }
                var next = record
                next.pending = nil
                try commit(next)
            case .delete:
                _ = try finishDelete()
            case .relink:
                try finishRelink()
            }
        }
        try drainUnlinkQueue()
    }

    /// Deletes the queued files (already unreferenced), then records the queue empty.
    func drainUnlinkQueue() throws(VHDXError) {
        guard !record.unlinkQueue.isEmpty else { return }
        for p in record.unlinkQueue where !record.referencedPaths.contains(p) { try removeFile(p) }
        var next = record
        next.unlinkQueue = []
        try commit(next)
    }

    /// Unlinks a set path (gone already is fine) and makes the removal durable.
    func removeFile(_ relative: String) throws(VHDXError) {
        let p = try contained(relative)
        do throws(VHDXError) {
            try FileSystem.unlink(p, missingIsFine: true)
        } catch {
            let why = error.systemErrno.map { String(cString: strerror($0)) } ?? error.message
            throw VHDXError(.io, "cannot delete a file the set no longer uses: \(why)", path: p, cause: error.cause)
        }
        try syncDirectory(ParentPaths.directory(of: p))
    }
}

/// Makes a directory's entries (a deletion) durable; a failure is an error.
func syncDirectory(_ dir: String) throws(VHDXError) {
    try FileSystem.synchronizeDirectory(dir)
}
