#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Removes temporaries `.NAME.tmp-PID-N` that earlier runs writing `path` left behind when they
/// were killed (SIGKILL, SIGXFSZ: no chance to clean up). Only those whose PID is gone are
/// removed: a live process, ours included, may still be building its file. (A PID reused since,
/// or one in another PID namespace sharing the folder, counts as alive or dead by what this
/// namespace sees; the first only keeps a stale file, hence the check is by PID alone.)
package func removeStaleTemporaries(for path: String) {
    let slash = path.lastIndex(of: "/")
    let dir = slash.map { String(path[...$0]) } ?? ""
    let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
    let prefix = ".\(base).tmp-"
    guard let d = opendir(dir.isEmpty ? "." : dir) else { return }
    defer { closedir(d) }
    var stale: [String] = []
    while let entry = readdir(d) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard name.hasPrefix(prefix) else { continue }
        let parts = name.dropFirst(prefix.count).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let pid = Int32(parts[0]), pid > 0, UInt32(parts[1]) != nil else { continue }
        guard pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
        stale.append(name)
    }
    for name in stale { FileSystem.removeQuietly(dir + name) }
}
