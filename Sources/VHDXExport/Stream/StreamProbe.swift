#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Tells an export stream by its first record's magic, for commands that read disk images and
/// would otherwise report the stream as a damaged image.
package enum StreamProbe {
    /// Whether `path` is a regular file starting with an export record (`vhdxexp1`). Pipes and
    /// devices are never probed: reading them would take bytes the command itself needs.
    package static func isExportStream(_ path: String) -> Bool {
        // Non-blocking: opening a FIFO for reading would otherwise wait for a writer (a hang).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return false }
        var head = [UInt8](repeating: 0, count: RecordHeader.magic.count)
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        return n == head.count && head == RecordHeader.magic
    }

    /// What to say instead of "corrupt image": what the file is and the commands that read it.
    package static func notAnImage(_ path: String) -> String {
        "\(path): an export stream of `vhdx export`, not a disk image: `vhdx verify IMAGE \(path)` compares an image with it, `vhdx restore OUT \(path)` makes an image of it"
    }
}
