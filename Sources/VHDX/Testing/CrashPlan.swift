#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A simulated power loss for crash tests of operations that span several real files (a VHD
/// Set's checkpoint touches the set file, the leaf and a new child): every `FileStorage` flush
/// made in the scope of `CrashPlan.$current` is counted; at flush number `crashAtFlush` the
/// "machine stops": that flush fails, and from then on every write, flush, resize, rename and
/// unlink of the scope fails too, so nothing written later (cleanup in error paths, close)
/// reaches the files, as after a real crash.
///
/// With `loseUnflushed`, each file's writes since its own last flush are undone at the crash
/// (their old bytes and size are put back): the page cache lost. Without it they all survive
/// (a killed process). A crash test runs both. Directory operations are taken as durable
/// when they return (the engine fsyncs the directory after each).
///
/// A task-local, so tests running in parallel each count only their own flushes; nothing is
/// recorded (and nothing costs more than one task-local read) outside such a scope.
package final class CrashPlan: Sendable {
    @TaskLocal package static var current: CrashPlan?

    package let crashAtFlush: Int
    package let loseUnflushed: Bool
    private struct State {
        var flushes = 0
        var crashed = false
        /// Per open file (keyed by its descriptor): old bytes of writes since its last flush.
        var undo: [Int32: [(offset: UInt64, old: [UInt8])]] = [:]
        var oldSize: [Int32: UInt64] = [:]
    }
    private let state = Mutex(State())

    package init(crashAtFlush: Int, loseUnflushed: Bool = false) {
        self.crashAtFlush = crashAtFlush
        self.loseUnflushed = loseUnflushed
    }

    /// Flushes counted so far (after an uninterrupted run: how many crash points it has).
    package var flushes: Int { state.withLock { $0.flushes } }
    package var crashed: Bool { state.withLock { $0.crashed } }

    static let crashError = VHDXError(.io, "simulated crash (CrashPlan)")

    /// Called before any change to the file system; throws once the machine has "stopped".
    package func checkAlive() throws(VHDXError) {
        if crashed { throw CrashPlan.crashError }
    }

    /// Before a pwrite of `count` bytes at `offset` on `fd`: remembers what it replaces.
    func willWrite(fd: Int32, offset: UInt64, count: Int) throws(VHDXError) {
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
            if $0.oldSize[fd] == nil { $0.oldSize[fd] = size }
            $0.undo[fd, default: []].append((offset, old))
        }
    }

    func willResize(fd: Int32) throws(VHDXError) {
        try checkAlive()
        guard loseUnflushed else { return }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return }
        state.withLock { if $0.oldSize[fd] == nil { $0.oldSize[fd] = UInt64(st.st_size) } }
    }

    /// A flush of `fd`: the crash point, or the file's writes so far made durable.
    func willFlush(fd: Int32) throws(VHDXError) {
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
        state.withLock { $0.undo[fd] = nil; $0.oldSize[fd] = nil }
    }

    /// A file being closed: its records are dropped, so its writes since its last flush count
    /// as surviving (undo needs the descriptor open, and a later file may reuse its number).
    /// The engine flushes before it closes a file it wrote, so this is the rare case.
    func willClose(fd: Int32) {
        state.withLock { $0.undo[fd] = nil; $0.oldSize[fd] = nil }
    }

    private func undoUnflushed() {
        let (undo, sizes) = state.withLock { s in
            defer { s.undo = [:]; s.oldSize = [:] }
            return (s.undo, s.oldSize)
        }
        for (fd, writes) in undo {
            for w in writes.reversed() where !w.old.isEmpty {
                _ = w.old.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, off_t(w.offset)) }
            }
        }
        for (fd, size) in sizes { _ = ftruncate(fd, off_t(size)) }
    }
}
