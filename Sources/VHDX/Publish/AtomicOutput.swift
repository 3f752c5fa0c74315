#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDXFormat

/// Builds a new file as a temporary file beside `path`, flushes it and renames it into place, so
/// `path` only ever names a complete file; on any error the temporary file is removed.
///
/// Without `overwrite` the rename itself refuses an existing name (renameat2 RENAME_NOREPLACE),
/// so a file another process created after the first check is never clobbered. With it, a
/// replaced file's permission bits are kept. Temporaries of earlier runs for the same output
/// whose process is gone (killed, SIGXFSZ) are removed first. Errors name `path`, never the
/// temporary, and say that `path` was not created or not changed. A `path` naming a device,
/// FIFO, socket or directory is refused first, also with `overwrite` (`refuseNonRegularOutput`).
package func writeAtomically(_ path: String, overwrite: Bool, _ build: (FileStorage) throws(VHDXError) -> Void) throws(VHDXError) {
    try refuseNonRegularOutput(path)
    var existing = stat()
    let exists = stat(path, &existing) == 0
    if !overwrite && exists {
        throw VHDXError(.invalidArgument, "already exists (replacing it must be asked for)", path: path, remedy: .overwrite)
    }
    removeStaleTemporaries(for: path)
    let tmp = temporaryPath(for: path)
    do throws(VHDXError) {
        let storage = try FileStorage(path: tmp, mode: .create, lock: false)
        try build(storage)
        if exists && chmod(tmp, existing.st_mode & 0o7777) != 0 {
            let e = errno
            throw VHDXError(.io, "cannot give the new file the replaced file's mode: \(String(cString: strerror(e)))", path: tmp, cause: Errno(e))
        }
        try storage.synchronize()
        try rename(tmp, as: path, overwrite: overwrite)
    } catch {
        FileSystem.removeQuietly(tmp)
        throw error.naming(path, insteadOf: tmp, replacing: exists)
    }
    try synchronizeAfterRename(path, replaced: exists)
}

/// Renames a finished temporary file over `path` (or, without `overwrite`, only to a free name)
/// and flushes the directory, so the new name is durable too.
/// A failure to flush the directory is an error: the new name may not survive a power loss.
/// Never over a device, FIFO, socket or directory (checked again here: one may have appeared
/// under the name while it was built).
package func publish(_ tmp: String, as path: String, overwrite: Bool = true) throws(VHDXError) {
    try refuseNonRegularOutput(path)
    var st = stat()
    let replaced = stat(path, &st) == 0
    try rename(tmp, as: path, overwrite: overwrite)
    try synchronizeAfterRename(path, replaced: replaced)
}

/// The directory flush that makes a rename into `path` durable. When it fails (EIO, a full
/// disk), a new name is removed again, so the command fails with nothing created and a re-run
/// needs no `--force`; a replaced file cannot be brought back, and the error says the new
/// content is in place but may not survive a power loss.
private func synchronizeAfterRename(_ path: String, replaced: Bool) throws(VHDXError) {
    do {
        try FileSystem.synchronizeDirectory(containing: path)
    } catch {
        var e = error
        if replaced {
            e.message += " (\(path) was replaced, but the replacement may not survive a power loss)"
        } else {
            FileSystem.removeQuietly(path)
            e.message += " (\(path) was not created)"
        }
        e.path = e.path ?? path
        throw e
    }
}

/// The rename of `publish`, without the directory flush.
private func rename(_ tmp: String, as path: String, overwrite: Bool) throws(VHDXError) {
    if overwrite {
        try FileSystem.rename(tmp, to: path)
    } else {
        try renameNoReplace(tmp, path)
    }
}

extension VHDXError {
    /// The error as the user should read it: about their output `path`, not the temporary file
    /// it was being built in, and saying that nothing changed under that name.
    func naming(_ path: String, insteadOf tmp: String, replacing: Bool) -> VHDXError {
        var e = self
        if e.path == nil || e.path == tmp { e.path = path }
        // A name taken meanwhile by someone else exists, but is not ours: it was left alone.
        let taken = (e.cause as? Errno)?.code == EEXIST
        e.message = e.message.replacing(tmp, with: path)
            + (replacing || taken ? " (\(path) was not changed)" : " (\(path) was not created)")
        return e
    }
}
