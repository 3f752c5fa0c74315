#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import VHDX

/// A simulated power loss for crash tests of operations on real files, seen through the
/// engine's file-system seam (`FaultSeam`), so writes made on any thread (a background
/// writer, a kernel copy) are seen too. `run(in:)` scopes the plan to a test's own folder.
///
/// Every flush point in that folder is counted: a file's flush (fdatasync) and a directory's
/// (the fsync that makes a rename or deletion durable). At point number `crashAtFlush` the
/// "machine stops": that flush fails, and from then on every write, copy, flush, resize,
/// rename and unlink there fails too, so nothing done later (cleanup in error paths, close)
/// reaches the files, as after a real crash.
///
/// With `loseUnflushed`, each file's writes since its last flush are undone at the crash
/// (their old bytes and size are put back): the page cache lost. Writes to files already
/// closed, or renamed since, are undone too (the file is found by its current name), so a
/// file published without a flush is caught. Without it they all survive (a killed process).
/// A crash test runs both. Renames, links and deletions are durable only once their directory
/// is flushed: with `loseUnflushed`, those made since are undone too (a replaced or deleted
/// file is kept as a hard link until then), so an output published without the directory's
/// fsync vanishes at the crash. `powerLoss()` crashes after the operation returned: what it
/// promised durable must still be there.
package final class CrashPlan: FileSystemFaults {
    package let crashAtFlush: Int
    package let loseUnflushed: Bool
    private struct Pending {
        var writes: [(offset: UInt64, old: [UInt8])] = []
        var oldSize: UInt64?
    }
    private struct State {
        var flushes = 0
        var crashed = false
        /// Per file (by its current absolute path): what its unflushed writes replaced.
        var pending: [String: Pending] = [:]
        /// Renames and deletions not yet made durable by their directory's flush, in order.
        var directoryOps: [DirectoryOp] = []
        var backups = 0
    }
    private struct DirectoryOp {
        enum Kind { case rename(from: String), unlink }
        var kind: Kind
        /// The name changed (the rename's target, the deleted file).
        var path: String
        /// A hard link to what the name held before, to put back.
        var backup: String?
        var directory: String { String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) + "/" }
    }
    private let state = Mutex(State())

    package init(crashAtFlush: Int, loseUnflushed: Bool = false) {
        self.crashAtFlush = crashAtFlush
        self.loseUnflushed = loseUnflushed
    }

    /// Flush points counted so far (after an uninterrupted run: how many crash points it has).
    package var flushes: Int { state.withLock { $0.flushes } }
    /// Whether the simulated crash happened.
    package var crashed: Bool { state.withLock { $0.crashed } }

    /// Runs `body` with this plan seeing every file operation under `directory`.
    package func run<T>(in directory: String, _ body: () throws -> T) throws -> T {
        try FaultSeam.withPlan(self, under: directory, body)
    }

    static let crashError = VHDXError(.io, "simulated crash (CrashPlan)")

    private func checkAlive() throws(VHDXError) {
        if crashed { throw CrashPlan.crashError }
    }

    package func willWrite(fd: Int32, path: String, offset: UInt64, count: Int) throws(VHDXError) {
        try checkAlive()
        guard loseUnflushed else { return }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return }
        let size = UInt64(st.st_size)
        var old = [UInt8](repeating: 0, count: offset >= size ? 0 : Int(min(UInt64(count), size - offset)))
        if !old.isEmpty {
            let n = old.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, off_t(offset)) }
            if n < old.count { old.removeLast(old.count - max(n, 0)) }
        }
        state.withLock {
            if $0.pending[path, default: Pending()].oldSize == nil { $0.pending[path, default: Pending()].oldSize = size }
            $0.pending[path, default: Pending()].writes.append((offset, old))
        }
    }

    package func willResize(fd: Int32, path: String) throws(VHDXError) {
        try checkAlive()
        guard loseUnflushed else { return }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return }
        state.withLock { if $0.pending[path, default: Pending()].oldSize == nil { $0.pending[path, default: Pending()].oldSize = UInt64(st.st_size) } }
    }

    /// A file's flush: the crash point, or the file's writes so far made durable.
    package func willFlush(fd: Int32, path: String) throws(VHDXError) {
        try flushPoint()
        state.withLock { _ = $0.pending.removeValue(forKey: path) }
    }

    /// A directory's flush: a crash point too; the renames and deletions in it become durable.
    package func willSyncDirectory(path: String) throws(VHDXError) {
        try flushPoint()
        let done: [DirectoryOp] = state.withLock { s in
            let d = s.directoryOps.filter { $0.directory == path }
            s.directoryOps.removeAll { $0.directory == path }
            return d
        }
        for op in done { if let b = op.backup { _ = unlink(b) } }
    }

    /// A power loss now, after the operation returned (its last flush done): what it made
    /// durable stays, the rest is undone as at a crash.
    package func powerLoss() {
        state.withLock { $0.crashed = true }
        if loseUnflushed { undoUnflushed() }
    }

    /// Removes the hard links kept for undoing (after a run that did not crash).
    package func discardBackups() {
        let ops = state.withLock { s in
            defer { s.directoryOps = [] }
            return s.directoryOps
        }
        for op in ops { if let b = op.backup { _ = unlink(b) } }
    }

    /// Keeps what `path` holds now as a hard link beside it (nil when nothing is there).
    private func backUp(_ path: String) -> String? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        let n = state.withLock { s in s.backups += 1; return s.backups }
        let dir = path[..<(path.lastIndex(of: "/") ?? path.startIndex)]
        let backup = "\(dir)/.crashplan-kept-\(getpid())-\(n)"
        return link(path, backup) == 0 ? backup : nil
    }

    private func flushPoint() throws(VHDXError) {
        try checkAlive()
        let crashNow: Bool = state.withLock {
            $0.flushes += 1
            if $0.flushes == crashAtFlush { $0.crashed = true; return true }
            return false
        }
        if crashNow {
            undoUnflushed()
            throw CrashPlan.crashError
        }
    }

    package func willClose(fd: Int32, path: String) {}

    /// The file's unflushed writes follow it to its new name; a file it replaces is gone (kept
    /// aside until the directory is flushed).
    package func willRename(from: String, to: String) throws(VHDXError) {
        try checkAlive()
        let backup = loseUnflushed ? backUp(to) : nil
        state.withLock { s in
            let moved = s.pending.removeValue(forKey: from)
            s.pending[to] = moved
            if loseUnflushed { s.directoryOps.append(DirectoryOp(kind: .rename(from: from), path: to, backup: backup)) }
        }
    }

    package func willUnlink(path: String) throws(VHDXError) {
        try checkAlive()
        let backup = loseUnflushed ? backUp(path) : nil
        state.withLock { s in
            _ = s.pending.removeValue(forKey: path)
            if loseUnflushed { s.directoryOps.append(DirectoryOp(kind: .unlink, path: path, backup: backup)) }
        }
    }

    /// Puts back what every unflushed write replaced, newest first, and each file's size; then
    /// every rename and deletion whose directory was not flushed, newest first.
    private func undoUnflushed() {
        undoWrites()
        let ops = state.withLock { s in
            defer { s.directoryOps = [] }
            return s.directoryOps
        }
        for op in ops.reversed() {
            switch op.kind {
            case .rename(let from):
                var st = stat()
                // A link (the no-replace fallback) left `from` in place: only the new name goes.
                if lstat(from, &st) == 0 { _ = unlink(op.path) } else { _ = rename(op.path, from) }
            case .unlink:
                break
            }
            if let b = op.backup { _ = rename(b, op.path) }
        }
    }

    private func undoWrites() {
        let pending = state.withLock { s in
            defer { s.pending = [:] }
            return s.pending
        }
        for (path, p) in pending {
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            for w in p.writes.reversed() where !w.old.isEmpty {
                _ = w.old.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, off_t(w.offset)) }
            }
            if let size = p.oldSize { _ = ftruncate(fd, off_t(size)) }
        }
    }
}
