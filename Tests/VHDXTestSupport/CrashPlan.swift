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
/// A crash test runs both. Renames and deletions count as durable once made.
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

    /// A directory's flush: a crash point too.
    package func willSyncDirectory(path: String) throws(VHDXError) {
        try flushPoint()
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

    /// The file's unflushed writes follow it to its new name; a file it replaces is gone.
    package func willRename(from: String, to: String) throws(VHDXError) {
        try checkAlive()
        state.withLock { s in
            let moved = s.pending.removeValue(forKey: from)
            s.pending[to] = moved
        }
    }

    package func willUnlink(path: String) throws(VHDXError) {
        try checkAlive()
        state.withLock { _ = $0.pending.removeValue(forKey: path) }
    }

    /// Puts back what every unflushed write replaced, newest first, and each file's size.
    private func undoUnflushed() {
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
