#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDXFormat

/// A file accessed with pread/pwrite only: no shared position, so concurrent readers are safe.
/// All platform calls (open, flock, fdatasync, ftruncate) live in this file.
package final class FileStorage: Storage, @unchecked Sendable {
    package let path: String
    package let isWritable: Bool
    let fd: Int32
    package var name: String { path }

    package enum Mode { case readOnly, readWrite, create }

    /// Opens `path`. Read-only opens take a shared lock, writable ones an exclusive lock, so a
    /// second writer gets a clear "in use" error instead of corrupting the file. On Linux the
    /// byte-range locks qemu takes are honoured and taken too (see `QemuLocks`), so `vhdx` and a
    /// running qemu see each other.
    ///
    /// Only regular files and block devices are images: a FIFO would block `open` forever, so
    /// the open itself is non-blocking and the type is checked before anything else happens.
    package init(path: String, mode: Mode = .readOnly, lock: Bool = true) throws(VHDXError) {
        self.path = path
        let flags: Int32
        switch mode {
        case .readOnly: flags = O_RDONLY
        case .readWrite: flags = O_RDWR
        case .create: flags = O_RDWR | O_CREAT | O_EXCL
        }
        let fd = open(path, flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0o644)
        guard fd >= 0 else {
            let e = errno
            throw VHDXError(.io, "cannot open: \(String(cString: strerror(e)))", path: path, cause: Errno(e))
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw VHDXError(.io, "cannot stat: \(String(cString: strerror(e)))", path: path, cause: Errno(e))
        }
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFBLK else {
            close(fd)
            throw VHDXError(.invalidArgument, "is \(FileStorage.describe(type)), not an image file (only regular files and block devices are opened)", path: path)
        }
        // Back to blocking I/O: O_NONBLOCK only had to protect the open.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        if lock {
            if !FileStorage.lock(fd, exclusive: mode != .readOnly) {
                let e = errno
                close(fd)
                throw VHDXError(.inUse, "the image is in use by another process (\(String(cString: strerror(e))))", path: path, cause: Errno(e))
            }
            if let conflict = QemuLocks.acquire(fd: fd, writable: mode != .readOnly) {
                close(fd)
                throw VHDXError(.inUse, "the image is in use by another process (\(conflict))", path: path)
            }
        }
        self.fd = fd
        self.isWritable = mode != .readOnly
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

    deinit {
        CrashPlan.current?.willClose(fd: fd)
        close(fd)
    }

    /// A non-blocking flock, retried for up to a quarter second: a lock released a moment ago
    /// can still be held by a process this one (or any other) forked and has not yet exec'd,
    /// because the forked copy shares the open file description. A lock really held by
    /// another user stays held, and is reported.
    private static func lock(_ fd: Int32, exclusive: Bool) -> Bool {
        for attempt in 0..<26 {
            if flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0 { return true }
            guard errno == EWOULDBLOCK, attempt < 25 else { return false }
            usleep(10_000)
        }
        return false
    }

    package func size() throws(VHDXError) -> UInt64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw fail("fstat", at: nil) }
        return UInt64(st.st_size)
    }

    /// pread/pwrite take a signed off_t: offsets from a damaged file must not trap converting.
    private func checkRange(_ offset: UInt64, _ count: Int) throws(VHDXError) {
        guard offset <= UInt64(Int64.max) - UInt64(count) else {
            throw VHDXError(.outOfBounds, "offset \(offset) is beyond any file", path: path, at: offset)
        }
    }

    /// Disk space the file occupies (st_blocks), which holes do not count.
    package func allocatedBytes() throws(VHDXError) -> UInt64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw fail("fstat", at: nil) }
        return UInt64(st.st_blocks) * 512
    }

    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        let n = try readAvailable(into: buffer, at: offset)
        guard n == buffer.count else {
            throw VHDXError(.outOfBounds, "read of \(buffer.count) bytes at \(offset) runs past the end of the file (\((try? size()) ?? 0) bytes)",
                            path: path, at: offset)
        }
    }

    /// Reads up to `buffer.count` bytes; returns how many (fewer only at end of file).
    package func readAvailable(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) -> Int {
        try checkRange(offset, buffer.count)
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("pread", at: offset + UInt64(done))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    package func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        guard isWritable else { throw VHDXError(.readOnly, "write to a file opened read-only", path: path, at: offset) }
        try checkRange(offset, buffer.count)
        try CrashPlan.current?.willWrite(fd: fd, offset: offset, count: buffer.count)
        var done = 0
        while done < buffer.count {
            let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("pwrite", at: offset + UInt64(done))
            }
            done += n
        }
    }

    package func resize(to size: UInt64) throws(VHDXError) {
        guard isWritable else { throw VHDXError(.readOnly, "resize of a file opened read-only", path: path) }
        try checkRange(size, 0)
        try CrashPlan.current?.willResize(fd: fd)
        guard ftruncate(fd, off_t(size)) == 0 else { throw fail("ftruncate", at: size) }
    }

    /// Gives a range's disk space back to the filesystem (fallocate PUNCH_HOLE|KEEP_SIZE), or
    /// writes zeros where the filesystem cannot punch holes.
    package func discard(offset: UInt64, length: UInt64) throws(VHDXError) {
        try checkRange(offset, 0)
        try CrashPlan.current?.willWrite(fd: fd, offset: offset, count: Int(min(length, 1 << 30)))
        #if os(Linux)
        if let fallocate = FileStorage.fallocate, length <= UInt64(Int64.max) - offset,
           fallocate(fd, 0x01 | 0x02, off_t(offset), off_t(length)) == 0 {  // KEEP_SIZE | PUNCH_HOLE
            return
        }
        #endif
        try writeZeros(offset: offset, length: length)
    }

    #if os(Linux)
    /// glibc's fallocate, which the Swift Glibc module does not export (it needs _GNU_SOURCE).
    private static let fallocate: (@convention(c) (Int32, Int32, off_t, off_t) -> Int32)? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "fallocate") else { return nil }
        return unsafeBitCast(sym, to: (@convention(c) (Int32, Int32, off_t, off_t) -> Int32).self)
    }()
    #endif

    /// Starts writing [offset, offset + length) back to the disk without waiting
    /// (sync_file_range SYNC_FILE_RANGE_WRITE), so a long copy's final flush does not write
    /// everything at once: the disk works while the copy goes on. Best effort: where the call
    /// is missing or fails, the final `synchronize` still writes everything.
    package func startWriteback(offset: UInt64, length: UInt64) {
        #if os(Linux)
        guard isWritable, let syncFileRange = FileStorage.syncFileRange,
              offset <= UInt64(Int64.max), length <= UInt64(Int64.max) - offset else { return }
        _ = syncFileRange(fd, off_t(offset), off_t(length), 2)  // SYNC_FILE_RANGE_WRITE
        #endif
    }

    #if os(Linux)
    /// glibc's sync_file_range, which the Swift Glibc module does not export (_GNU_SOURCE).
    private static let syncFileRange: (@convention(c) (Int32, off_t, off_t, UInt32) -> Int32)? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sync_file_range") else { return nil }
        return unsafeBitCast(sym, to: (@convention(c) (Int32, off_t, off_t, UInt32) -> Int32).self)
    }()
    #endif

    package enum SeekResult: Equatable { case at(UInt64), none, unknown }

    /// lseek SEEK_DATA (`data: true`) or SEEK_HOLE from `offset`: where the next data or hole
    /// starts, `.none` when there is no more data, `.unknown` when the filesystem cannot say.
    package func seek(data: Bool, from offset: UInt64) -> SeekResult {
        guard offset <= UInt64(Int64.max) else { return .unknown }
        #if os(Linux)
        let whence: Int32 = data ? 3 : 4
        #else
        let whence: Int32 = data ? 4 : 3  // Darwin numbers them the other way round
        #endif
        let r = lseek(fd, off_t(offset), whence)
        if r < 0 { return errno == ENXIO ? .none : .unknown }
        return .at(UInt64(r))
    }

    package func synchronize() throws(VHDXError) {
        guard isWritable else { return }
        try CrashPlan.current?.willFlush(fd: fd)
        guard fdatasync(fd) == 0 else { throw fail("fdatasync", at: nil) }
    }

    private func fail(_ call: String, at offset: UInt64?) -> VHDXError {
        let e = errno
        return VHDXError(.io, "\(call) failed: \(String(cString: strerror(e)))", path: path, at: offset, cause: Errno(e))
    }
}

/// An errno value with its C name's meaning, as a cause.
package struct Errno: Error, CustomStringConvertible {
    package let code: Int32
    package init(_ code: Int32) { self.code = code }
    package var description: String { "errno \(code): \(String(cString: strerror(code)))" }
}
