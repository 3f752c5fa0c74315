#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Refuses an output that is one of the conversion's inputs (the source or a parent in its
/// chain), compared by device and inode, so another name, a symlink or a hard link is caught
/// too. Renaming the output over a parent would change the content under the source's feet and
/// cut its link (its DataWriteGuid no longer matches), destroying the source.
public func refuseOverwritingInput(_ output: String, inputs: [String]) throws(VHDXError) {
    guard let out = FileIdentity(path: output) else { return }  // no such file yet: nothing to destroy
    for (layer, input) in inputs.enumerated() where FileIdentity(path: input) == out {
        throw VHDXError(.invalidArgument, layer == 0
                        ? "refusing to overwrite the source \(input) with its own conversion"
                        : "refusing to overwrite \(input), layer \(layer) of the source's parent chain: the source would lose its parent",
                        path: output)
    }
}

/// Refuses an output path that names something other than a regular file: a character or block
/// device, a FIFO, a socket or a directory (also through a symlink). Outputs are built as a
/// temporary file and renamed over the name, so "replacing" `/dev/sdb` or `/dev/null` would turn
/// the device node into a plain file (as root, the disk's node is gone and whatever reads it
/// next reads our file), and a FIFO's reader would never see a byte. Replacing is allowed only for
/// regular files, even when the caller asks to overwrite. (Writing an image *into* a block
/// device is a different operation, not offered.) A path that does not exist passes.
package func refuseNonRegularOutput(_ path: String) throws(VHDXError) {
    var st = stat()
    guard stat(path, &st) == 0 else { return }  // nothing there (or unreadable: the create reports it)
    let kind: String
    switch st.st_mode & S_IFMT {
    case S_IFREG: return
    case S_IFCHR: kind = "a character device"
    case S_IFBLK: kind = "a block device"
    case S_IFIFO: kind = "a FIFO (named pipe)"
    case S_IFSOCK: kind = "a socket"
    case S_IFDIR: kind = "a directory"
    default: kind = "a special file"
    }
    throw VHDXError(.invalidArgument, "is \(kind), not a regular file: an output is only created as, or replaces, a regular file (the image is built beside it and renamed over the name), so it was left untouched", path: path)
}
