#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Renames `from` to `to` only if `to` does not exist, atomically: a file another process
/// creates under `to` meanwhile is never replaced (`already exists` instead).
///
/// renameat2(RENAME_NOREPLACE) where the kernel and filesystem support it; where they do not
/// (EINVAL, ENOSYS, EOPNOTSUPP), link() + unlink(), which fails with EEXIST just as atomically.
/// Only on a filesystem without hard links either (EPERM) does it fall back to check-then-rename.
func renameNoReplace(_ from: String, _ to: String, useRenameat2: Bool = true) throws(VHDXError) {
    func exists() -> VHDXError {
        VHDXError(.invalidArgument, "already exists (created meanwhile by someone else; replacing it must be asked for)", path: to, cause: Errno(EEXIST), remedy: .overwrite)
    }
    func failed(_ e: Int32) -> VHDXError { FileSystem.failure("rename to \(to) failed", e, path: to) }
    if useRenameat2 {
        let e = try FileSystem.renameNoReplaceCall(from, to: to)
        if e == 0 { return }
        if e == EEXIST { throw exists() }
        guard e == EINVAL || e == ENOSYS || e == EOPNOTSUPP else { throw failed(e) }
    }
    let e = try FileSystem.linkCall(from, to: to)
    if e == 0 {
        FileSystem.removeQuietly(from)
        return
    }
    if e == EEXIST { throw exists() }
    guard e == EPERM || e == EOPNOTSUPP else { throw failed(e) }
    guard access(to, F_OK) != 0 else { throw exists() }
    try FileSystem.rename(from, to: to)
}
