import Synchronization

/// What a fault plan sees of the file system layer (`FileSystem`): every change it makes, and
/// every read, on any thread, before it is made. A plan may throw to make the call fail (a
/// simulated power loss stops everything from some point on; an injected EIO, ENOSPC or
/// EACCES fails one call) and may record what a change replaces (to undo what was never
/// flushed). The plans themselves live in the test support target; the engine only has this
/// seam.
package protocol FileSystemFaults: AnyObject, Sendable {
    /// Before up to `count` bytes are read from the open file `fd` (named `path` at its open):
    /// at `offset`, or at the stream's position (nil) for a file read front to back.
    func willRead(fd: Int32, path: String, offset: UInt64?, count: Int) throws(VHDXError)
    /// Before `count` bytes are written at `offset` of the open file `fd` (named `path` at its
    /// open): a write, a kernel copy into it, a hole punched.
    func willWrite(fd: Int32, path: String, offset: UInt64, count: Int) throws(VHDXError)
    /// Before the file's size changes (ftruncate).
    func willResize(fd: Int32, path: String) throws(VHDXError)
    /// Before the file's data is flushed (fdatasync).
    func willFlush(fd: Int32, path: String) throws(VHDXError)
    /// Before the descriptor is closed.
    func willClose(fd: Int32, path: String)
    /// Before `from` is renamed to `to`.
    func willRename(from: String, to: String) throws(VHDXError)
    /// Before `path` is deleted.
    func willUnlink(path: String) throws(VHDXError)
    /// Before the directory `path` is flushed (fsync), which makes renames and deletions in it durable.
    func willSyncDirectory(path: String) throws(VHDXError)
}

extension FileSystemFaults {
    /// Reads change nothing: a plan that only simulates power loss need not see them.
    package func willRead(fd: Int32, path: String, offset: UInt64?, count: Int) throws(VHDXError) {}
}

/// The process-wide registry of fault plans, each scoped to a directory: a plan sees the
/// operations on paths under its directory, and on descriptors opened under it (mapped at
/// open), whatever thread makes them. Tests running in parallel each work in a folder of their
/// own, so each plan sees only its own test. With no plan installed the cost of the seam is
/// one atomic load per operation.
package enum FaultSeam {
    private struct Scope {
        let directory: String
        let plan: any FileSystemFaults
    }
    private struct Tables {
        var scopes: [Scope] = []
        var descriptors: [Int32: (path: String, plan: any FileSystemFaults)] = [:]
    }
    private static let installed = Atomic<Int>(0)
    private static let tables = Mutex(Tables())

    /// Runs `body` with `plan` seeing every operation under `directory` (an absolute path).
    package static func withPlan<T, E: Error>(_ plan: any FileSystemFaults, under directory: String,
                                              _ body: () throws(E) -> T) throws(E) -> T {
        let dir = directory.hasSuffix("/") ? directory : directory + "/"
        tables.withLock { $0.scopes.append(Scope(directory: dir, plan: plan)) }
        installed.add(1, ordering: .sequentiallyConsistent)
        defer {
            tables.withLock { t in
                if let i = t.scopes.firstIndex(where: { $0.plan === plan && $0.directory == dir }) { t.scopes.remove(at: i) }
                t.descriptors = t.descriptors.filter { $0.value.plan !== plan }
            }
            installed.subtract(1, ordering: .sequentiallyConsistent)
        }
        return try body()
    }

    /// The plan whose directory holds the absolute path `absolute`, if any.
    private static func plan(forAbsolute absolute: String) -> (any FileSystemFaults)? {
        tables.withLock { t in t.scopes.last { absolute.hasPrefix($0.directory) }?.plan }
    }

    /// The plan `fd` was opened under, with the path it was opened as.
    private static func plan(for fd: Int32) -> (path: String, plan: any FileSystemFaults)? {
        guard installed.load(ordering: .relaxed) > 0 else { return nil }
        return tables.withLock { $0.descriptors[fd] }
    }

    // The hooks `FileSystem` calls before each change.

    static func willRead(_ fd: Int32, offset: UInt64?, count: Int) throws(VHDXError) {
        if let (path, plan) = plan(for: fd) { try plan.willRead(fd: fd, path: path, offset: offset, count: count) }
    }
    static func willWrite(_ fd: Int32, offset: UInt64, count: Int) throws(VHDXError) {
        if let (path, plan) = plan(for: fd) { try plan.willWrite(fd: fd, path: path, offset: offset, count: count) }
    }
    static func willResize(_ fd: Int32) throws(VHDXError) {
        if let (path, plan) = plan(for: fd) { try plan.willResize(fd: fd, path: path) }
    }
    static func willFlush(_ fd: Int32) throws(VHDXError) {
        if let (path, plan) = plan(for: fd) { try plan.willFlush(fd: fd, path: path) }
    }
    static func willRename(_ from: String, to: String) throws(VHDXError) {
        guard installed.load(ordering: .relaxed) > 0 else { return }
        let f = absolute(from), t = absolute(to)
        guard let plan = plan(forAbsolute: t) ?? plan(forAbsolute: f) else { return }
        try plan.willRename(from: f, to: t)
        // Descriptors open on the file now name it by its new path.
        tables.withLock { tables in
            for (fd, entry) in tables.descriptors where entry.path == f { tables.descriptors[fd] = (t, entry.plan) }
        }
    }
    static func willUnlink(_ path: String) throws(VHDXError) {
        guard installed.load(ordering: .relaxed) > 0 else { return }
        let p = absolute(path)
        if let plan = plan(forAbsolute: p) { try plan.willUnlink(path: p) }
    }
    static func willSyncDirectory(_ dir: String) throws(VHDXError) {
        guard installed.load(ordering: .relaxed) > 0 else { return }
        var d = absolute(dir)
        if !d.hasSuffix("/") { d += "/" }
        if let plan = plan(forAbsolute: d) { try plan.willSyncDirectory(path: d) }
    }

    static func opened(_ fd: Int32, path: String) {
        guard installed.load(ordering: .relaxed) > 0 else { return }
        let absolute = FaultSeam.absolute(path)
        tables.withLock { t in
            if let plan = t.scopes.last(where: { absolute.hasPrefix($0.directory) })?.plan {
                t.descriptors[fd] = (absolute, plan)
            }
        }
    }

    /// Before `fd` is closed: its plan hears of it, and the number may be reused afterwards.
    static func closing(_ fd: Int32) {
        guard installed.load(ordering: .relaxed) > 0 else { return }
        guard let entry = tables.withLock({ $0.descriptors.removeValue(forKey: fd) }) else { return }
        entry.plan.willClose(fd: fd, path: entry.path)
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return FileSystem.currentDirectory() + "/" + path
    }
}
