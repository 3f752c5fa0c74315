#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX

/// The bytes of `write --input`, with their length known before anything is written, so a
/// request that would run past the end of the disk is refused whole.
///
/// A regular file's length is its size (capped by --length). A pipe's is only known at its
/// end, so a pipe is staged first — in memory up to one buffer, beyond that in an unlinked
/// temporary file in $TMPDIR — reading stops as soon as it exceeds the room left on the disk
/// (without --length) or reaches --length. An input that ends before --length (a file shorter
/// than it, a pipe that closes early) is refused before anything is written: writing only what
/// came would leave the rest of the range with its old content while the command succeeds.
/// (With a --length that does not fit on the disk the pipe is not read at all: the range check
/// refuses the request first.)
final class InputSource {
    static let bufferSize = 8 << 20
    let path: String
    private var fd: Int32
    private var ownsFD: Bool
    /// Bytes the copy will write.
    private(set) var length: UInt64
    /// A staged pipe held more than the room left on the disk; reading stopped there.
    private(set) var exceedsRoom = false
    /// A staged pipe: its first buffer, and the spool file holding everything when larger.
    private var staged: [UInt8]?
    private var spool: Int32 = -1

    init(path: String, limit: UInt64?, room: UInt64) throws(VHDXError) {
        self.path = path
        fd = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
        ownsFD = path != "-"
        length = 0
        guard fd >= 0 else { throw VHDXError(.io, "cannot open input: \(String(cString: strerror(errno)))", path: path) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw VHDXError(.io, "cannot stat input: \(String(cString: strerror(errno)))", path: path) }
        if st.st_mode & S_IFMT == S_IFREG {
            length = min(UInt64(st.st_size), limit ?? .max)
            if let limit, length < limit { throw InputSource.endedEarly(path, after: length, of: limit) }
        } else if let limit {
            guard limit <= room else {
                length = limit  // the range check refuses it; nothing needs reading
                return
            }
            try stage(upTo: limit)
            if length < limit { throw InputSource.endedEarly(path, after: length, of: limit) }
        } else {
            try stage(upTo: room + 1)
            exceedsRoom = length > room
        }
    }

    static func endedEarly(_ path: String, after got: UInt64, of wanted: UInt64) -> VHDXError {
        VHDXError(.invalidArgument, "input ended after \(got) of \(wanted) bytes (the length asked for); nothing was written",
                  path: path == "-" ? "<stdin>" : path)
    }

    deinit {
        if ownsFD { close(fd) }
        if spool >= 0 { close(spool) }
    }

    /// Reads the input until it ends or `cap` bytes are read, into memory when it all fits in
    /// the first buffer, else into the spool file; `length` is what was read.
    private func stage(upTo cap: UInt64) throws(VHDXError) {
        var buffer = [UInt8](repeating: 0, count: InputSource.bufferSize)
        while length < cap {
            let want = Int(min(UInt64(buffer.count), cap - length))
            let got = try fill(&buffer, from: fd, want: want)
            let ended = got < want
            if spool < 0 && (ended || UInt64(got) == cap) {
                // The whole input is in this first buffer.
                staged = Array(buffer[0..<got])
                length = UInt64(got)
                return
            }
            if spool < 0 { spool = try InputSource.temporaryFile() }
            try typed { try buffer.withUnsafeBytes { b in
                try InputSource.writeAll(spool, UnsafeRawBufferPointer(rebasing: b[0..<got]), at: length)
            } }
            length += UInt64(got)
            if ended { return }
        }
    }

    /// Calls `body` with consecutive pieces and their offsets from the start of the input.
    func copy(_ body: (UnsafeRawBufferPointer, UInt64) throws(VHDXError) -> Void) throws(VHDXError) {
        if let staged {
            try typed { try staged.withUnsafeBytes { b in try body(b, 0) } }
            return
        }
        let source = spool >= 0 ? spool : fd
        if spool >= 0 { lseek(spool, 0, SEEK_SET) }
        var buffer = [UInt8](repeating: 0, count: InputSource.bufferSize)
        var done: UInt64 = 0
        while done < length {
            let want = Int(min(UInt64(buffer.count), length - done))
            let got = try fill(&buffer, from: source, want: want)
            if got == 0 { break }
            try typed { try buffer.withUnsafeBytes { b in try body(UnsafeRawBufferPointer(rebasing: b[0..<got]), done) } }
            done += UInt64(got)
            if got < want { break }
        }
    }

    /// Fills up to `want` bytes (pipes return short reads); fewer only at end of input.
    private func fill(_ buffer: inout [UInt8], from fd: Int32, want: Int) throws(VHDXError) -> Int {
        try typed {
            try buffer.withUnsafeMutableBytes { b in
                try FileSystem.readStream(fd, into: UnsafeMutableRawBufferPointer(rebasing: b[0..<want]), path: path)
            }
        }
    }

    private static func temporaryFile() throws(VHDXError) -> Int32 {
        var dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        if dir.isEmpty { dir = "/tmp" }
        var template = Array("\(dir)/vhdx-input-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw VHDXError(.io, "cannot create a temporary file to stage the input: \(String(cString: strerror(errno)))", path: dir) }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        return fd
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        do throws(VHDXError) {
            try FileSystem.write(fd, bytes, at: offset, path: "<staged input>")
        } catch {
            throw VHDXError(.io, "cannot stage the input: \(error.message)", cause: error.cause)
        }
    }
}
