#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import VHDX

/// An I/O error injected through the engine's file-system seam (`FaultSeam`): every read,
/// write, resize, flush, rename, unlink and directory flush under a test's folder is counted,
/// on any thread, and call number `failAt` (from 0) fails with `code` (EIO, ENOSPC, EACCES) as
/// the system call would. Only that call: a transient fault, so what the operation does next
/// (its error path, a close) runs as it would on a real disk. Without `failAt` it only counts,
/// which tells a sweep how many points an operation has.
package final class IOFaultPlan: FileSystemFaults {
    package enum Call: String, Sendable { case read, write, resize, flush, rename, unlink, syncDirectory = "directory flush" }
    package let failAt: Int?
    package let code: Int32
    /// Which calls are counted (and can fail); all by default.
    package let calls: Set<Call>
    /// When set, only reads and writes touching these bytes of a file count (a structure's
    /// own calls, the tracking region's say), and no other call.
    package let bytes: Range<UInt64>?
    /// When set, only calls on files whose path ends with it count (".vhds": the set file).
    package let file: String?
    private struct State {
        var count = 0
        var fired: String?
        var kinds: [Call] = []
    }
    private let state = Mutex(State())

    package init(failAt: Int? = nil, code: Int32 = EIO, calls: Set<Call> = [.read, .write, .resize, .flush, .rename, .unlink, .syncDirectory],
                 bytes: Range<UInt64>? = nil, file: String? = nil) {
        self.failAt = failAt
        self.code = code
        self.calls = calls
        self.bytes = bytes
        self.file = file
    }

    private func touches(_ offset: UInt64?, _ count: Int) -> Bool {
        guard let bytes else { return true }
        guard let offset else { return false }
        return offset < bytes.upperBound && offset + UInt64(count) > bytes.lowerBound
    }

    /// Calls counted so far.
    package var count: Int { state.withLock { $0.count } }
    /// The kind of each call counted, in order.
    package var kinds: [Call] { state.withLock { $0.kinds } }
    /// The call that failed ("write of 4096 bytes at 1048576 of /…/disk.vhdx"), nil when none did.
    package var fired: String? { state.withLock { $0.fired } }

    /// Runs `body` with this plan seeing every file operation under `directory`.
    package func run<T>(in directory: String, _ body: () throws -> T) throws -> T {
        try FaultSeam.withPlan(self, under: directory, body)
    }

    /// The errno's C name, for messages and replay lines.
    package static func name(_ code: Int32) -> String {
        switch code {
        case EIO: "EIO"
        case ENOSPC: "ENOSPC"
        case EACCES: "EACCES"
        default: "errno \(code)"
        }
    }

    private func hit(_ call: Call, _ what: @autoclosure () -> String, path: String) throws(VHDXError) {
        guard calls.contains(call), bytes == nil || call == .read || call == .write else { return }
        if let file, !path.hasSuffix(file) { return }
        let fail: Bool = state.withLock { s in
            defer { s.count += 1 }
            s.kinds.append(call)
            guard s.count == failAt else { return false }
            s.fired = "\(call.rawValue) \(what()) (call \(s.count))"
            return true
        }
        if fail {
            throw VHDXError(.io, "\(call.rawValue) failed: \(String(cString: strerror(code))) (injected by IOFaultPlan)", path: path, cause: Errno(code))
        }
    }

    package func willRead(fd: Int32, path: String, offset: UInt64?, count: Int) throws(VHDXError) {
        guard touches(offset, count) else { return }
        try hit(.read, "of \(count) bytes at \(offset.map(String.init) ?? "the stream's position") of \(path)", path: path)
    }
    package func willWrite(fd: Int32, path: String, offset: UInt64, count: Int) throws(VHDXError) {
        guard touches(offset, count) else { return }
        try hit(.write, "of \(count) bytes at \(offset) of \(path)", path: path)
    }
    package func willResize(fd: Int32, path: String) throws(VHDXError) { try hit(.resize, "of \(path)", path: path) }
    package func willFlush(fd: Int32, path: String) throws(VHDXError) { try hit(.flush, "of \(path)", path: path) }
    package func willClose(fd: Int32, path: String) {}
    package func willRename(from: String, to: String) throws(VHDXError) { try hit(.rename, "of \(from) to \(to)", path: to) }
    package func willUnlink(path: String) throws(VHDXError) { try hit(.unlink, "of \(path)", path: path) }
    package func willSyncDirectory(path: String) throws(VHDXError) { try hit(.syncDirectory, "of \(path)", path: path) }
}

/// A sweep of injected I/O errors over an operation: a counting run says how many calls it
/// makes, then every `stride`-th call fails in turn, the errno cycling through EIO, ENOSPC and
/// EACCES. It cannot pass vacuously: `problems` names a sweep that visited no point, or a point
/// whose fault never fired (the operation did not make that call again).
package final class IOFaultSweep {
    package static let codes: [Int32] = [EIO, ENOSPC, EACCES]
    package let name: String
    package private(set) var points = 0
    /// Points where the operation failed (with the injected error, as the test checks).
    package private(set) var failed = 0
    private var notFired: [Int] = []

    package init(_ name: String) { self.name = name }

    /// The points to visit, from a counting run's calls (`IOFaultPlan.kinds`), about `limit`
    /// of them: every rename, unlink and directory flush (where a swallowed error publishes
    /// or loses a file), then flushes and resizes, then reads and writes, each kind spread
    /// evenly over the room left (at least a few of each); each with its errno, cycling through
    /// EIO, ENOSPC, EACCES.
    package static func points(_ kinds: [IOFaultPlan.Call], limit: Int = 30) -> [(index: Int, code: Int32)] {
        func spread(_ of: [Int], _ room: Int) -> [Int] {
            let step = max(1, (of.count + max(room, 1) - 1) / max(room, 1))
            return Swift.stride(from: 0, to: of.count, by: step).map { of[$0] }
        }
        let names = kinds.indices.filter { [.rename, .unlink, .syncDirectory].contains(kinds[$0]) }
        let flushes = kinds.indices.filter { kinds[$0] == .flush || kinds[$0] == .resize }
        let io = kinds.indices.filter { kinds[$0] == .read || kinds[$0] == .write }
        let first = spread(names, max(limit / 3, 2))
        let second = spread(flushes, max((limit - first.count) / 2, 2))
        let third = spread(io, max(limit - first.count - second.count, 4))
        return (first + second + third).sorted().enumerated().map { ($1, codes[$0 % codes.count]) }
    }

    /// The operation failed at this point.
    package func failedWithIOError() { failed += 1 }

    /// A point was run with `plan`: whether its fault fired.
    package func visited(_ plan: IOFaultPlan) {
        points += 1
        if plan.fired == nil, let i = plan.failAt { notFired.append(i) }
    }

    /// "NAME: N points of M calls", for the test's output.
    package func summary(calls: Int) -> String { "\(name): \(points) fault points of \(calls) calls, \(failed) failed with the I/O error" }

    package var problems: [String] {
        var p: [String] = []
        if points == 0 { p.append("\(name): no fault point visited") }
        if !notFired.isEmpty { p.append("\(name): the fault never fired at calls \(notFired.prefix(5))") }
        if points > 0 && failed == 0 { p.append("\(name): no fault made the operation fail") }
        return p
    }

    /// Whether `error` is the injected I/O error, as the caller sees it: an engine or export
    /// error that says I/O (never damaged, truncated, not a set, reset), carrying the errno
    /// where the engine's error is kept.
    package static func isIOError(_ error: Error, code: Int32) -> Bool {
        if let e = VHDXError.carried(by: error) { return e.code == .io && (e.systemErrno == nil || e.systemErrno == code) }
        return false
    }
}
