#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX
import VHDXFormat

/// A set's files stay in its folder tree on disk, not only in the record's bytes (SET-FORMAT.md
/// §2.5): a path whose folder (or the file itself) is a symbolic link leading elsewhere is
/// refused before anything is created, opened or deleted through it.
extension VHDSet {
    /// The set path `relative` made usable from here, once what it leads to on disk (its real
    /// path, or that of its deepest existing folder for a file not there yet) lies inside the
    /// real path of the set's folder. A file that is missing is not an error here: whoever
    /// opens it says so.
    func contained(_ relative: String) throws(VHDXError) -> String {
        let p = absolute(relative)
        try VHDSet.requireInside(p, root: folder, what: "the set path \(SetPath.printable(relative))", setPath: path)
        return p
    }

    /// Checks that the file or folder `p` (or, when it does not exist, its deepest existing
    /// folder) resolves inside the real path of `root`.
    static func requireInside(_ p: String, root: String, what: String, setPath: String) throws(VHDXError) {
        guard let base = realPath(root) else {
            throw VHDXError(.io, "the set's folder cannot be resolved: \(String(cString: strerror(errno)))", path: root)
        }
        var probe = p
        var st = stat()
        while lstat(probe, &st) != 0 {
            let up = ParentPaths.directory(of: probe)
            guard up != probe else { return }
            probe = up
        }
        guard let real = realPath(probe) else {
            // A dangling symbolic link: it leads nowhere inside (or outside) yet; refused too.
            throw VHDXError(.invalidArgument, "\(what) goes through a symbolic link that leads nowhere (\(probe)); a set's files stay in its folder tree", path: p)
        }
        let prefix = base == "/" ? "/" : base + "/"
        guard real == base || real.hasPrefix(prefix) else {
            throw VHDXError(.invalidArgument, "\(what) leads outside the set's folder \(base) (through a symbolic link, to \(real)); a set's files are only created, opened and deleted inside its folder tree", path: p)
        }
    }

    /// The folder a set file's paths are relative to: the folder the set file really is in
    /// (through a symbolic link to the set file, its target's folder).
    static func folder(of setPath: String) -> String {
        var st = stat()
        if lstat(setPath, &st) == 0, st.st_mode & S_IFMT == S_IFLNK, let real = realPath(setPath) {
            return ParentPaths.directory(of: real)
        }
        return ParentPaths.directory(of: setPath)
    }
}
