#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDXFormat

/// A file accessed with pread/pwrite only: no shared position, so concurrent readers are safe.
/// Its opens, reads, writes, flushes and truncations go through `FileSystem`, the platform
/// layer (and fault-injection seam); the locks (flock, qemu's) are taken here.
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
    /// Only regular files and block devices are images (`FileSystem.openImage`: a FIFO never
    /// blocks the open).
    package init(path: String, mode: Mode = .readOnly, lock: Bool = true) throws(VHDXError) {
        self.path = path
        let fd: Int32
        switch mode {
        case .readOnly: fd = try FileSystem.openImage(path, mode: .readOnly)
        case .readWrite: fd = try FileSystem.openImage(path, mode: .readWrite)
        case .create: fd = try FileSystem.openImage(path, mode: .create)
        }
        if lock {
            if !FileStorage.lock(fd, exclusive: mode != .readOnly) {
                let e = errno
                FileSystem.close(fd)
                throw VHDXError(.inUse, "the image is in use by another process (\(String(cString: strerror(e))))", path: path, cause: Errno(e))
            }
            if let conflict = QemuLocks.acquire(fd: fd, writable: mode != .readOnly) {
                FileSystem.close(fd)
                throw VHDXError(.inUse, "the image is in use by another process (\(conflict))", path: path)
            }
        }
        self.fd = fd
        self.isWritable = mode != .readOnly
    }

    deinit { FileSystem.close(fd) }

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
        guard fstat(fd, &st) == 0 else { throw FileSystem.failure("fstat failed", errno, path: path) }
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
        guard fstat(fd, &st) == 0 else { throw FileSystem.failure("fstat failed", errno, path: path) }
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
        return try FileSystem.read(fd, into: buffer, at: offset, path: path)
    }

    package func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        guard isWritable else { throw VHDXError(.readOnly, "write to a file opened read-only", path: path, at: offset) }
        try checkRange(offset, buffer.count)
        try FileSystem.write(fd, buffer, at: offset, path: path)
    }

    package func resize(to size: UInt64) throws(VHDXError) {
        guard isWritable else { throw VHDXError(.readOnly, "resize of a file opened read-only", path: path) }
        try checkRange(size, 0)
        try FileSystem.truncate(fd, to: size, path: path)
    }

    /// Gives a range's disk space back to the filesystem (fallocate PUNCH_HOLE|KEEP_SIZE), or
    /// writes zeros where the filesystem cannot punch holes.
    package func discard(offset: UInt64, length: UInt64) throws(VHDXError) {
        try checkRange(offset, 0)
        if try FileSystem.punchHole(fd, offset: offset, length: length) { return }
        try writeZeros(offset: offset, length: length)
    }

    /// Starts writing [offset, offset + length) back to the disk without waiting
    /// (sync_file_range SYNC_FILE_RANGE_WRITE), so a long copy's final flush does not write
    /// everything at once: the disk works while the copy goes on. Best effort: where the call
    /// is missing or fails, the final `synchronize` still writes everything.
    package func startWriteback(offset: UInt64, length: UInt64) {
        guard isWritable else { return }
        FileSystem.startWriteback(fd, offset: offset, length: length)
    }

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
        try FileSystem.synchronize(fd, path: path)
    }
}
