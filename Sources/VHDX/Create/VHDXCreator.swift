#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDXFormat

/// Creates fixed and dynamic images. The file appears under its name only when complete and
/// flushed: it is built as a temporary file beside the target and renamed.
public enum VHDXCreator {
    public static func create(path: String, options: CreateOptions, overwrite: Bool = false) throws(VHDXError) {
        try writeAtomically(path, overwrite: overwrite) { (storage) throws(VHDXError) in try create(on: storage, options: options) }
    }

    /// Lays a new image onto empty storage.
    public static func create(on storage: Storage, options: CreateOptions) throws(VHDXError) {
        let plan = try PlannedLayout(options)
        let builder = ImageBuilder(storage: storage, options: options, plan: plan)
        try builder.writeStructures()
        let g = plan.geometry
        if options.fixed {
            // Every block allocated, in order, right after the BAT; their bytes are the file's
            // zero-filled extension.
            try builder.writeBAT { i in
                let (isSB, block) = g.classify(index: i)
                guard !isSB, block < g.dataBlockCount else { return BATEntry(raw: 0) }
                return BATEntry(state: PayloadBlockState.fullyPresent.rawValue, fileOffsetMB: (plan.payloadStart + block * g.blockSize) / Layout.MiB)
            }
            try storage.resize(to: plan.payloadStart + g.dataBlockCount * g.blockSize)
        } else {
            try builder.writeBAT { _ in BATEntry(raw: 0) }
            try storage.resize(to: plan.payloadStart)
        }
    }
}

/// Builds a new file as a temporary file beside `path`, flushes it and renames it into place, so
/// `path` only ever names a complete file; on any error the temporary file is removed.
func writeAtomically(_ path: String, overwrite: Bool, _ build: (FileStorage) throws(VHDXError) -> Void) throws(VHDXError) {
    if !overwrite && access(path, F_OK) == 0 {
        throw VHDXError(.invalidArgument, "already exists (use --force to replace it)", path: path)
    }
    let tmp = temporaryPath(for: path)
    do {
        let storage = try FileStorage(path: tmp, mode: .create, lock: false)
        try build(storage)
        try storage.synchronize()
    } catch {
        unlink(tmp)
        throw error
    }
    try publish(tmp, as: path)
}

/// Renames a finished temporary file over `path` and flushes the directory, so the new name is
/// durable too.
func publish(_ tmp: String, as path: String) throws(VHDXError) {
    guard rename(tmp, path) == 0 else {
        let e = errno
        unlink(tmp)
        throw VHDXError(.io, "rename to \(path) failed: \(String(cString: strerror(e)))", path: tmp, cause: Errno(e))
    }
    let slash = path.lastIndex(of: "/")
    let dir = slash.map { String(path[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
    let fd = open(dir, O_RDONLY | O_DIRECTORY)
    if fd >= 0 { _ = fsync(fd); close(fd) }
}
