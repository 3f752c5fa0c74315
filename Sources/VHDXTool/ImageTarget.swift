import VHDX
import VHDXSets

/// An image argument that may name a VHD Set. A set resolves to its active leaf, whose chain
/// the command then opens as usual, after the set checked it is its chain (files present,
/// frozen files unmodified, links as recorded). The set stays open, holding its lock, for as
/// long as the target lives: shared for reading commands, exclusive for writing ones, so a
/// `write` through the set and a `set delete` refuse each other with "in use".
struct ImageTarget {
    let path: String
    let set: VHDSet?

    static func resolve(_ argument: String, writable: Bool, parents: ParentArguments? = nil) throws(VHDXError) -> ImageTarget {
        guard try VHDSet.looksLikeSet(argument) else { return ImageTarget(path: argument, set: nil) }
        if let parents, parents.parent != nil || !parents.searchDirs.isEmpty || parents.ignoreIdMismatch {
            throw VHDXError(.invalidArgument, "--parent, --search-dir and --ignore-id-mismatch do not apply to a VHD Set: it names its own chain (`vhdx set relink` points it at a moved file)", path: argument)
        }
        let set = try VHDSet.open(path: argument, writable: writable)
        _ = try set.openLeaf()
        return ImageTarget(path: set.leafPath, set: set)
    }

    /// Keeps the set (and its lock) until the command is done with the image.
    func hold() { withExtendedLifetime(set) {} }
}

extension ImageTarget {
    /// `resolve`, exiting with the error's message (exit 1) when the set cannot be used.
    static func resolveOrExit(_ argument: String, writable: Bool, parents: ParentArguments? = nil) -> ImageTarget {
        do { return try resolve(argument, writable: writable, parents: parents) } catch { Output.fail(error) }
    }
}

extension Finding {
    /// A set finding in `check`'s report: corruption (exit 2) or a notice.
    init(set f: SetFinding) {
        self.init(f.severity == .corruption ? .corruption : .notice, .setProblem, "VHD Set",
                  (f.path.map { "\($0): " } ?? "") + f.message)
    }
}
