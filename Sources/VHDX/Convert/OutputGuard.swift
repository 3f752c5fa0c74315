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
