#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDXFormat

/// Creates fixed and dynamic images. The file appears under its name only when complete and
/// flushed: it is built as a temporary file beside the target and renamed.
public enum VHDXCreator {
    /// Creates an image at `path` as a temporary file renamed into place; an existing file is replaced only with `overwrite`.
    public static func create(path: String, options: CreateOptions, overwrite: Bool = false) throws(VHDXError) {
        try writeAtomically(path, overwrite: overwrite) { (storage) throws(VHDXError) in try create(on: storage, options: options) }
    }

    /// Lays a new image onto empty storage.
    package static func create(on storage: Storage, options: CreateOptions) throws(VHDXError) {
        let plan = try PlannedLayout(options)
        let builder = ImageBuilder(storage: storage, options: options, plan: plan)
        try builder.writeStructures()
        let g = plan.geometry
        if options.fixed {
            // Every block allocated, in order, right after the BAT; their bytes are the file's
            // zero-filled extension.
            try builder.writeBAT { (i) throws(VHDXError) -> BATEntry in
                let (isSB, block) = g.classify(index: i)
                guard !isSB, block < g.dataBlockCount else { return .notPresent }
                return try .dataBlock(at: plan.payloadStart + block * g.blockSize)
            }
            try storage.resize(to: plan.payloadStart + g.dataBlockCount * g.blockSize)
        } else {
            try builder.writeBAT { _ in .notPresent }
            try storage.resize(to: plan.payloadStart)
        }
    }
}
