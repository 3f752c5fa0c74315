#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// renameat2(2), looked up at run time: Glibc's Swift module does not export it (it is declared
/// only under _GNU_SOURCE), and older C libraries lack it altogether.
private typealias Renameat2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
private let renameat2Function: Renameat2? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2").map { unsafeBitCast($0, to: Renameat2.self) }
private let renameNoReplaceFlag: UInt32 = 1  // RENAME_NOREPLACE
private let atCurrentDirectory: Int32 = -100  // AT_FDCWD

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
    func failed(_ e: Int32) -> VHDXError {
        VHDXError(.io, "rename to \(to) failed: \(String(cString: strerror(e)))", path: to, cause: Errno(e))
    }
    if useRenameat2, let renameat2 = renameat2Function {
        if renameat2(atCurrentDirectory, from, atCurrentDirectory, to, renameNoReplaceFlag) == 0 { return }
        let e = errno
        if e == EEXIST { throw exists() }
        guard e == EINVAL || e == ENOSYS || e == EOPNOTSUPP else { throw failed(e) }
    }
    if link(from, to) == 0 {
        unlink(from)
        return
    }
    let e = errno
    if e == EEXIST { throw exists() }
    guard e == EPERM || e == EOPNOTSUPP else { throw failed(e) }
    guard access(to, F_OK) != 0 else { throw exists() }
    guard rename(from, to) == 0 else { throw failed(errno) }
}
