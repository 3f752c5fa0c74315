import VHDXFormat

/// What a change that fails part-way (ENOSPC or EIO on a payload write, an allocation, the
/// log or an in-place update) leaves behind.
///
/// Every point a change can stop at is one a crash could stop at, and the log protocol makes
/// those consistent: before an entry is durable the metadata in place is the old one (payload
/// written so far sits in space nothing references yet); once it is durable, its updates are
/// kept in `Journal.unapplied` until all are in place. So the image is made clean right away,
/// without waiting for a replay: write the unapplied updates again, flush, clear LogGuid. A
/// process that exits on the error (the CLI) then leaves no pending log, which read-only opens
/// would have to replay in memory and other tools might ignore. Only if that clean-up fails
/// too (the device keeps failing) is the log left pending, and the next open replays it.
///
/// The session takes no more changes after a failure: the in-memory BAT, layout and free-space
/// cursor may no longer match what the file holds, and reopening rebuilds them.
extension VHDXFile {
    /// Runs the part of a change that writes; on failure, cleans up as above and rethrows.
    func failSafe<T>(_ body: () throws(VHDXError) -> T) throws(VHDXError) -> T {
        try requireChangeable()
        do {
            return try body()
        } catch {
            endSession(after: error)
            throw error
        }
    }

    /// Writable, and no earlier change of this session failed.
    func requireChangeable() throws(VHDXError) {
        try requireWritable()
        if let failure = journal.failure { throw VHDXError.sessionEnded(by: failure, path: storage.name) }
    }
}

extension VHDXError {
    static func sessionEnded(by failure: VHDXError, path: String) -> VHDXError {
        VHDXError(.io, "an earlier change failed (\(failure.message)); the image was left consistent, but this session takes no more changes: reopen it",
                  path: path, cause: failure)
    }
}
