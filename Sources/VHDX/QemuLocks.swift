#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The image locks QEMU's file-posix driver takes, so that `vhdx` and a running qemu (or
/// qemu-img, qemu-io, qemu-nbd) see each other. `flock` alone does not: on Linux, flock and
/// POSIX/OFD byte-range locks are independent, and qemu uses only the latter.
///
/// QEMU's protocol (block/file-posix.c, "image locking"): each block-layer permission `i`
/// (bit 0 consistent-read, 1 write, 2 write-unchanged, 3 resize) has two lock bytes, held as
/// shared (read) OFD locks that never conflict with one another:
///   - byte 100 + i: "I hold permission i";
///   - byte 200 + i: "I do not share permission i with anyone else".
/// Before taking permission i a process tests that nobody else holds byte 200 + i; before
/// refusing to share i it tests that nobody else holds byte 100 + i. The test is an
/// F_OFD_GETLK for a write lock, which reports locks of other open file descriptions only.
/// Both sides lock first and test second, so two racing openers both fail rather than both
/// succeed.
///
/// What we take mirrors a qemu-img/qemu-io open of the same kind: a reader holds consistent-read
/// and shares nothing that would change the image (write, resize); a writer holds
/// consistent-read, write and resize and shares none of write and resize.
enum QemuLocks {
    static let permBase: Int64 = 100
    static let sharedBase: Int64 = 200

    enum Permission: Int64, CaseIterable {
        case consistentRead = 0, write = 1, writeUnchanged = 2, resize = 3

        var name: String {
            switch self {
            case .consistentRead: "consistent read"
            case .write: "write"
            case .writeUnchanged: "write unchanged"
            case .resize: "resize"
            }
        }
    }

    /// Takes the locks of a reader or a writer on `fd`. Returns nil when they are held, or a
    /// description of the conflict (the locks taken are then released by closing `fd`).
    /// Filesystems without OFD locks (or other platforms) are not a conflict: the flock
    /// lock still protects against another `vhdx`.
    static func acquire(fd: Int32, writable: Bool) -> String? {
        #if os(Linux)
        let held: [Permission] = writable ? [.consistentRead, .write, .resize] : [.consistentRead]
        let unshared: [Permission] = [.write, .resize]
        for p in held { guard set(fd, at: permBase + p.rawValue) else { return nil } }
        for p in unshared { guard set(fd, at: sharedBase + p.rawValue) else { return nil } }
        for p in held where heldByOthers(fd, at: sharedBase + p.rawValue) {
            return "another program (qemu?) holds it open and does not share the \"\(p.name)\" permission"
        }
        for p in unshared where heldByOthers(fd, at: permBase + p.rawValue) {
            return "another program (qemu?) has it open with the \"\(p.name)\" permission"
        }
        #endif
        return nil
    }

    #if os(Linux)
    private static let ofdGetLock: Int32 = 36  // F_OFD_GETLK
    private static let ofdSetLock: Int32 = 37  // F_OFD_SETLK

    /// Takes a shared OFD lock on one byte. False when the filesystem or kernel cannot do OFD
    /// locks (then qemu cannot either, and there is nothing to coordinate with).
    private static func set(_ fd: Int32, at byte: Int64) -> Bool {
        var fl = request(F_RDLCK, byte)
        return fcntl(fd, ofdSetLock, &fl) == 0
    }

    /// Whether another open file description holds a lock on the byte.
    private static func heldByOthers(_ fd: Int32, at byte: Int64) -> Bool {
        var fl = request(F_WRLCK, byte)
        guard fcntl(fd, ofdGetLock, &fl) == 0 else { return false }
        return fl.l_type != Int16(F_UNLCK)
    }

    /// A one-byte request; OFD locks require l_pid 0.
    private static func request(_ type: Int32, _ byte: Int64) -> flock {
        var fl = flock()
        fl.l_type = Int16(type)
        fl.l_whence = Int16(SEEK_SET)
        fl.l_start = off_t(byte)
        fl.l_len = 1
        fl.l_pid = 0
        return fl
    }
    #endif
}
