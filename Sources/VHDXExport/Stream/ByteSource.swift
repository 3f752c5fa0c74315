#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX

/// A stream read front to back: a file, or standard input for `-`.
final class ByteSource {
    /// How messages name standard input (`-` on the command line).
    static let standardInput = "- (standard input)"
    let name: String
    private let fd: Int32
    private let owned: Bool
    private(set) var position: UInt64 = 0

    /// `name` labels messages (a spooled copy of standard input is named as standard input).
    init(path: String, name: String? = nil) throws(ExportError) {
        if path == "-" {
            fd = 0
            owned = false
            self.name = name ?? ByteSource.standardInput
        } else {
            let f: Int32
            do throws(VHDXError) {
                f = try FileSystem.openForReading(path)
            } catch let e where e.code == .io {
                throw ExportError(.io, e.message, path: name ?? path)
            } catch {
                throw ExportError(.invalid, "is a directory, not an export", path: name ?? path)
            }
            fd = f
            owned = true
            self.name = name ?? path
        }
    }

    deinit { if owned { FileSystem.close(fd) } }

    /// Exactly `count` bytes, or fewer at the end of the stream.
    func read(_ count: Int) throws(ExportError) -> [UInt8] {
        guard count > 0 else { return [] }
        var failure: VHDXError?
        // Not zero-filled first: only what was read is kept.
        let out = [UInt8](unsafeUninitializedCapacity: count) { b, done in
            do throws(VHDXError) {
                done = try FileSystem.readStream(fd, into: UnsafeMutableRawBufferPointer(b), path: name)
            } catch {
                done = 0
                failure = error
            }
        }
        if let failure { throw ExportError(.io, "reading the stream failed at byte \(position + UInt64(out.count)): \(failure.message)", path: name) }
        position += UInt64(out.count)
        return out
    }
}
