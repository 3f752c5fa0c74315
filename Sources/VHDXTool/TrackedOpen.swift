import VHDX
import VHDXChangeTracking

/// Every command that opens an image for writing goes through here, so the disk's change
/// tracking (if enabled) sees every change the command makes. A writable open without it
/// would still be caught (a new DataWriteGuid nobody recorded resets tracking), but as a
/// reset, not as tracked changes.
enum TrackedOpen {
    static func image(_ path: String, writable: Bool, parents: ParentArguments) throws(VHDXError) -> VHDXFile {
        let image = try VHDXFile.openChain(path: path, writable: writable, parents: parents.options)
        try ChangeTracker.attach(to: image)
        return image
    }

    /// A single file (no chain resolution): resize, compact, reparent's target.
    static func file(_ path: String, writable: Bool) throws(VHDXError) -> VHDXFile {
        let image = try VHDXFile.openFile(path: path, writable: writable)
        try ChangeTracker.attach(to: image)
        return image
    }
}
