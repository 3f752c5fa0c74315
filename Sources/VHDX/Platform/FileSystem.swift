#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CPlatform

/// The engine's file-system calls, in one place: the EINTR loops, the flush the platform needs
/// (fdatasync; F_FULLFSYNC on Darwin), the Linux calls Swift does not export (CPlatform), and
/// errors that keep the errno (`VHDXError.errno`), so a caller tells a full disk (ENOSPC) from
/// a failing one (EIO) or a refusal (EACCES).
///
/// It is also the fault-injection seam: every read, write, copy, flush, truncate, rename,
/// unlink and directory flush passes `FaultSeam` first, on whatever thread it runs.
package enum FileSystem {
    package enum OpenMode { case readOnly, readWrite, create }

    /// Opens `path` as an image: only regular files and block devices. A FIFO would block
    /// `open` forever, so the open itself is non-blocking and the type is checked before
    /// anything else happens; the descriptor is then put back to blocking I/O.
    package static func openImage(_ path: String, mode: OpenMode) throws(VHDXError) -> Int32 {
        let flags: Int32
        switch mode {
        case .readOnly: flags = O_RDONLY
        case .readWrite: flags = O_RDWR
        case .create: flags = O_RDWR | O_CREAT | O_EXCL
        }
        let fd = open(path, flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0o644)
        guard fd >= 0 else { throw failure("cannot open", errno, path: path) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            _ = cClose(fd)
            throw failure("cannot stat", e, path: path)
        }
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFBLK else {
            _ = cClose(fd)
            throw VHDXError(.invalidArgument, "is \(describe(type)), not an image file (only regular files and block devices are opened)", path: path)
        }
        // Back to blocking I/O: O_NONBLOCK only had to protect the open.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        FaultSeam.opened(fd, path: path)
        return fd
    }

    /// Opens `path` to be read front to back (an export stream): a regular file, a pipe or a
    /// device; a directory is refused. Close it with `close`.
    package static func openForReading(_ path: String) throws(VHDXError) -> Int32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cannot open", errno, path: path) }
        var st = stat()
        if fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFDIR {
            _ = cClose(fd)
            throw VHDXError(.invalidArgument, "is a directory", path: path)
        }
        FaultSeam.opened(fd, path: path)
        return fd
    }

    static func describe(_ type: mode_t) -> String {
        switch type {
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO (named pipe)"
        case S_IFSOCK: "a socket"
        case S_IFCHR: "a character device"
        case S_IFLNK: "a symbolic link"
        default: "not a regular file"
        }
    }

    /// Closes a descriptor `openImage` gave.
    package static func close(_ fd: Int32) {
        FaultSeam.closing(fd)
        _ = cClose(fd)
    }

    /// Reads up to `buffer.count` bytes at `offset`; fewer only at end of file.
    package static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, path: String) throws(VHDXError) -> Int {
        try FaultSeam.willRead(fd, offset: offset, count: buffer.count)
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("pread failed", errno, path: path, at: offset + UInt64(done))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Writes all of `buffer` at `offset`.
    package static func write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at offset: UInt64, path: String) throws(VHDXError) {
        try FaultSeam.willWrite(fd, offset: offset, count: buffer.count)
        var done = 0
        while done < buffer.count {
            let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("pwrite failed", errno, path: path, at: offset + UInt64(done))
            }
            done += n
        }
    }

    /// Writes all of `buffer` to a stream (a pipe, standard output), at its position.
    package static func writeStream(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String, what: String = "write failed") throws(VHDXError) {
        var done = 0
        while done < buffer.count {
            let n = cWrite(fd, buffer.baseAddress! + done, buffer.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(what, errno, path: path)
            }
            done += n
        }
    }

    /// Reads up to `count` bytes of a stream (a pipe, standard input); fewer only at its end.
    package static func readStream(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, path: String) throws(VHDXError) -> Int {
        try FaultSeam.willRead(fd, offset: nil, count: buffer.count)
        var done = 0
        while done < buffer.count {
            let n = cRead(fd, buffer.baseAddress! + done, buffer.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("read failed", errno, path: path)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Makes the file's data durable: fdatasync, F_FULLFSYNC on Darwin (where fsync alone
    /// leaves the data in the drive's cache).
    package static func synchronize(_ fd: Int32, path: String) throws(VHDXError) {
        try FaultSeam.willFlush(fd)
        #if canImport(Darwin)
        if fcntl(fd, F_FULLFSYNC) == 0 { return }
        guard fsync(fd) == 0 else { throw failure("fsync failed", errno, path: path) }
        #else
        while fdatasync(fd) != 0 {
            if errno == EINTR { continue }
            throw failure("fdatasync failed", errno, path: path)
        }
        #endif
    }

    package static func truncate(_ fd: Int32, to size: UInt64, path: String) throws(VHDXError) {
        try FaultSeam.willResize(fd)
        while ftruncate(fd, off_t(size)) != 0 {
            if errno == EINTR { continue }
            throw failure("ftruncate failed", errno, path: path, at: size)
        }
    }

    /// Gives a range's disk space back (fallocate PUNCH_HOLE|KEEP_SIZE). False where the
    /// platform or filesystem cannot: the caller writes zeros instead.
    package static func punchHole(_ fd: Int32, offset: UInt64, length: UInt64) throws(VHDXError) -> Bool {
        guard offset <= UInt64(Int64.max), length <= UInt64(Int64.max) - offset else { return false }
        try FaultSeam.willWrite(fd, offset: offset, count: Int(min(length, 1 << 30)))
        return swvhdx_fallocate(fd, 0x01 | 0x02, Int64(offset), Int64(length)) == 0  // KEEP_SIZE | PUNCH_HOLE
    }

    /// Starts the writeback of a range without waiting (sync_file_range WRITE); best effort.
    /// Not a change to the file, so not seen by fault plans.
    package static func startWriteback(_ fd: Int32, offset: UInt64, length: UInt64) {
        guard offset <= UInt64(Int64.max), length <= UInt64(Int64.max) - offset else { return }
        _ = swvhdx_sync_file_range(fd, Int64(offset), Int64(length), 2)  // SYNC_FILE_RANGE_WRITE
    }

    /// One copy_file_range call: bytes copied, or -errno (-ENOSYS where there is none). A
    /// fault plan sees it as a write of `length` bytes into `fdOut`.
    package static func copyRange(from fdIn: Int32, at offIn: UInt64, to fdOut: Int32, at offOut: UInt64, length: Int) -> Int {
        guard offIn <= UInt64(Int64.max), offOut <= UInt64(Int64.max) else { return -Int(EINVAL) }
        do throws(VHDXError) { try FaultSeam.willWrite(fdOut, offset: offOut, count: length) } catch { return -Int(EIO) }
        var i = Int64(offIn), o = Int64(offOut)
        let r = swvhdx_copy_file_range(fdIn, &i, fdOut, &o, length, 0)
        return r >= 0 ? Int(r) : -Int(errno)
    }

    /// Renames `from` over `to`.
    package static func rename(_ from: String, to: String) throws(VHDXError) {
        try FaultSeam.willRename(from, to: to)
        guard cRename(from, to) == 0 else {
            throw failure("rename to \(to) failed", errno, path: to)
        }
    }

    /// renameat2(RENAME_NOREPLACE): 0, or the errno.
    static func renameNoReplaceCall(_ from: String, to: String) throws(VHDXError) -> Int32 {
        try FaultSeam.willRename(from, to: to)
        return swvhdx_renameat2(from, to, 1) == 0 ? 0 : errno  // RENAME_NOREPLACE
    }

    /// link(2): 0, or the errno (the no-replace rename's fallback).
    static func linkCall(_ from: String, to: String) throws(VHDXError) -> Int32 {
        try FaultSeam.willRename(from, to: to)
        return link(from, to) == 0 ? 0 : errno
    }

    /// Deletes `path`. With `missingIsFine`, a name already gone is not an error.
    package static func unlink(_ path: String, missingIsFine: Bool = false) throws(VHDXError) {
        try FaultSeam.willUnlink(path)
        guard cUnlink(path) == 0 else {
            let e = errno
            if missingIsFine && e == ENOENT { return }
            throw failure("cannot delete", e, path: path)
        }
    }

    /// Deletes a temporary file on the way out of an error: best effort, nothing to report.
    package static func removeQuietly(_ path: String) {
        try? unlink(path, missingIsFine: true)
    }

    /// Flushes the directory holding `path`, so a rename or deletion in it survives a power
    /// loss. A failure is an error: without it the new name may not be there after a reboot.
    package static func synchronizeDirectory(containing path: String) throws(VHDXError) {
        try synchronizeDirectory(directory(of: path))
    }

    /// Flushes the directory `dir` (fsync).
    package static func synchronizeDirectory(_ dir: String) throws(VHDXError) {
        try FaultSeam.willSyncDirectory(dir)
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cannot open the directory to flush it", errno, path: dir) }
        defer { _ = cClose(fd) }
        while fsync(fd) != 0 {
            if errno == EINTR { continue }
            throw failure("flushing the directory failed", errno, path: dir)
        }
    }

    /// The directory part of `path` ("." for a bare name, "/" for a file at the root).
    package static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }

    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "." }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// An operating-system call's failure: `what`, the errno's text, and the errno as `cause`.
    package static func failure(_ what: String, _ e: Int32, path: String?, at offset: UInt64? = nil) -> VHDXError {
        VHDXError(.io, "\(what): \(String(cString: strerror(e)))", path: path, at: offset, cause: Errno(e))
    }
}

extension VHDXError {
    /// The errno of the operating-system call that failed, when that is the cause (ENOSPC: the
    /// disk is full; EIO: it failed; EACCES, EPERM: refused).
    package var systemErrno: Int32? { (cause as? Errno)?.code }
}

/// An errno value with its C name's meaning, as a cause.
package struct Errno: Error, CustomStringConvertible {
    package let code: Int32
    package init(_ code: Int32) { self.code = code }
    package var description: String { "errno \(code): \(String(cString: strerror(code)))" }
}

// The C library's calls under names the static functions above do not shadow.
#if canImport(Glibc)
private func cClose(_ fd: Int32) -> Int32 { Glibc.close(fd) }
private func cWrite(_ fd: Int32, _ b: UnsafeRawPointer, _ n: Int) -> Int { Glibc.write(fd, b, n) }
private func cRead(_ fd: Int32, _ b: UnsafeMutableRawPointer, _ n: Int) -> Int { Glibc.read(fd, b, n) }
private func cRename(_ a: String, _ b: String) -> Int32 { Glibc.rename(a, b) }
private func cUnlink(_ p: String) -> Int32 { Glibc.unlink(p) }
#else
private func cClose(_ fd: Int32) -> Int32 { Darwin.close(fd) }
private func cWrite(_ fd: Int32, _ b: UnsafeRawPointer, _ n: Int) -> Int { Darwin.write(fd, b, n) }
private func cRead(_ fd: Int32, _ b: UnsafeMutableRawPointer, _ n: Int) -> Int { Darwin.read(fd, b, n) }
private func cRename(_ a: String, _ b: String) -> Int32 { Darwin.rename(a, b) }
private func cUnlink(_ p: String) -> Int32 { Darwin.unlink(p) }
#endif
