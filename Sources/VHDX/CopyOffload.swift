#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDXFormat

/// Copies byte ranges from one file to another inside the kernel (`copy_file_range`), with the
/// caller's read/write loop as the fallback.
///
/// The kernel copy never passes the bytes through this process: on ext4 it copies page cache
/// to page cache, on XFS and btrfs (block-aligned offsets and lengths) it shares the extents
/// (a reflink: no data written at all). Where the kernel cannot (files on different
/// filesystems before Linux 5.3 or across some filesystem types: EXDEV; a filesystem or
/// kernel without support: EINVAL, ENOSYS, EOPNOTSUPP; anything else), the rest of the range
/// goes through `fallback`, and after an "unsupported" answer offloading stops for the rest of
/// the run. A short copy continues where it stopped. Real I/O errors are reported by the
/// fallback loop, which reads and writes the same ranges with the usual messages.
///
/// Holes of the source (SEEK_DATA/SEEK_HOLE) are skipped in ranges of at least `holeScanMin`,
/// so they stay holes in the destination; zeros the source stores as data are copied as data
/// (the read/write loop, which looks at every byte, makes those holes too).
///
/// Used by `vhdx convert` to raw; export and restore can use it the same way.
package struct CopyOffload {
    /// The kernel call: (fd in, offset in, fd out, offset out, length) -> bytes copied, or
    /// -errno. Tests give one that fails or copies short to exercise the fallback.
    package typealias KernelCopy = (Int32, UInt64, Int32, UInt64, Int) -> Int

    /// `VHDX_COPY_OFFLOAD=0` (or `off`) turns offloading off: every byte then goes through the
    /// read/write loop (for comparisons and benchmarks).
    package static let environmentVariable = "VHDX_COPY_OFFLOAD"
    static let holeScanMin: UInt64 = 1 << 20
    /// One call copies at most this much, so progress and interruption stay responsive.
    static let maxCall = 64 << 20

    package private(set) var enabled: Bool
    /// Why offloading stopped, when the kernel refused it ("copy_file_range: Invalid argument").
    package private(set) var stoppedBecause: String?
    /// Bytes the kernel copied, and bytes that went through the fallback.
    package private(set) var offloadedBytes: UInt64 = 0
    package private(set) var fallbackBytes: UInt64 = 0
    let kernelCopy: KernelCopy

    /// Enabled unless the environment turns it off or the platform has no copy_file_range.
    package init(enabled: Bool = CopyOffload.enabledByEnvironment(), kernelCopy: KernelCopy? = nil) {
        let call = kernelCopy ?? CopyOffload.systemCopy
        self.kernelCopy = call ?? { _, _, _, _, _ in -Int(ENOSYS) }
        self.enabled = enabled && call != nil
    }

    package static func enabledByEnvironment() -> Bool {
        guard let v = getenv(environmentVariable).map({ String(cString: $0).lowercased() }) else { return true }
        return !(v == "0" || v == "off" || v == "no" || v == "false")
    }

    /// Copies `length` bytes at `sourceOffset` of `source` to `destinationOffset` of
    /// `destination`: in the kernel where it can, the rest through `fallback(sourceOffset,
    /// destinationOffset, length)`. Source holes are skipped (left as they are in the
    /// destination, which must read as zeros there: a new, truncated file).
    package mutating func copy(from source: FileStorage, at sourceOffset: UInt64, to destination: FileStorage, at destinationOffset: UInt64,
                              length: UInt64, fallback: (UInt64, UInt64, UInt64) throws(VHDXError) -> Void) throws(VHDXError) {
        guard enabled else {
            fallbackBytes += length
            return try fallback(sourceOffset, destinationOffset, length)
        }
        let end = sourceOffset + length
        var at = sourceOffset
        while at < end {
            var dataEnd = end
            if length >= CopyOffload.holeScanMin {
                switch source.seek(data: true, from: at) {
                case .none: return  // only holes from here on
                case .at(let data) where data >= end: return
                case .at(let data):
                    at = data
                    if case .at(let hole) = source.seek(data: false, from: data) { dataEnd = min(end, hole) }
                case .unknown: break
                }
            }
            while at < dataEnd {
                let n = min(Int(clamping: dataEnd - at), CopyOffload.maxCall)
                let r = kernelCopy(source.fd, at, destination.fd, destinationOffset + (at - sourceOffset), n)
                if r > 0 {
                    at += UInt64(r)
                    offloadedBytes += UInt64(r)
                    continue
                }
                if r == -Int(EINTR) { continue }
                // 0 (nothing more, unexpected inside the file) or an error: the loop takes over.
                if r < 0, CopyOffload.unsupported.contains(Int32(-r)) {
                    enabled = false
                    stoppedBecause = "copy_file_range: \(String(cString: strerror(Int32(-r))))"
                }
                fallbackBytes += end - at
                return try fallback(at, destinationOffset + (at - sourceOffset), end - at)
            }
        }
    }

    /// Answers that mean "not here": offloading stops for the rest of the run.
    static let unsupported: Set<Int32> = [EXDEV, EINVAL, ENOSYS, EOPNOTSUPP, EBADF, EPERM, ETXTBSY]

    /// copy_file_range (`FileSystem.copyRange`) as a `KernelCopy`; nil where there is none
    /// (the fallback then does everything).
    static var systemCopy: KernelCopy? {
        #if os(Linux)
        return { fdIn, offIn, fdOut, offOut, length in FileSystem.copyRange(from: fdIn, at: offIn, to: fdOut, at: offOut, length: length) }
        #else
        return nil
        #endif
    }
}
