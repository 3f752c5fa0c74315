#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDXFormat

/// Where a child's parent may be, in the order they are tried: the locator's relative_path
/// (against the child's folder), volume_path and absolute_win32_path mapped onto this machine,
/// then the parent's file name in the child's folder and in each search directory.
///
/// Windows paths cannot be resolved as such on Linux: a drive path `\\?\C:\a\b.vhdx` is tried as
/// `/mnt/c/a/b.vhdx` (WSL's mount) and as `/a/b.vhdx`; a volume path's volume GUID names nothing
/// here, so only its path part is tried, from `/`.
package enum ParentPaths {
    static func candidates(childPath: String, locator: ParentLocator, searchDirectories: [String]) -> [String] {
        let dir = directory(of: childPath)
        var out: [String] = []
        var names: [String] = []
        func add(_ p: String) { if !p.isEmpty, !out.contains(p) { out.append(p) } }
        if let rel = locator["relative_path"] {
            let parts = components(rel)
            if !parts.isEmpty {
                // `..` is taken from the child's real folder first when the folder was reached
                // through a symlink: createChild writes the path between real paths, and the
                // lexical `..` would climb out of the symlink's parent instead. Then lexically.
                if let real = realPath(dir), real != absolute(dir) { add(normalize(real + "/" + parts.joined(separator: "/"))) }
                add(normalize(dir + "/" + parts.joined(separator: "/")))
                names.append(parts.last!)
            }
        }
        if let vol = locator["volume_path"] {
            // \\?\Volume{GUID}\path\file: drop the volume.
            var parts = components(vol)
            if let i = parts.firstIndex(where: { $0.hasPrefix("Volume{") }) { parts.removeFirst(i + 1) } else { parts.removeAll() }
            if !parts.isEmpty {
                add("/" + parts.joined(separator: "/"))
                names.append(parts.last!)
            }
        }
        if let abs = locator["absolute_win32_path"] {
            var parts = components(abs)
            if parts.first == "?" { parts.removeFirst() }
            if let drive = parts.first, drive.count == 2, drive.hasSuffix(":"), let letter = drive.first, letter.isLetter {
                let rest = parts.dropFirst().joined(separator: "/")
                add("/mnt/\(letter.lowercased())/" + rest)
                add("/" + rest)
            }
            if let last = parts.last { names.append(last) }
        }
        for d in [dir] + searchDirectories {
            for n in names { add(normalize(d + "/" + n)) }
        }
        return out
    }

    /// The path components of a Windows or POSIX path, without empty and `.` parts.
    static func components(_ path: String) -> [String] {
        path.split(whereSeparator: { $0 == "\\" || $0 == "/" }).map(String.init).filter { $0 != "." }
    }

    /// `path` made absolute against the working directory and folded lexically (no symlinks
    /// resolved).
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return normalize(path) }
        guard let cwd = realPath(".") else { return normalize(path) }
        return normalize(cwd + "/" + path)
    }

    package static func directory(of path: String) -> String { FileSystem.directory(of: path) }

    /// Folds `..` and `.` lexically (the locator's `..` means the folder above, as on Windows).
    static func normalize(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var out: [String] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == "..", let last = out.last, last != ".." { out.removeLast(); continue }
            if part == "..", absolute { continue }
            out.append(String(part))
        }
        let joined = out.joined(separator: "/")
        return absolute ? "/" + joined : (joined.isEmpty ? "." : joined)
    }

    /// The locator path from a child's folder to its parent, in Windows form (`.\p.vhdx`,
    /// `..\base\p.vhdx`), both given as absolute POSIX paths.
    static func relativeWindowsPath(from childDir: String, to parentPath: String) -> String {
        let a = components(childDir), b = components(parentPath)
        var common = 0
        while common < a.count, common < b.count - 1, a[common] == b[common] { common += 1 }
        let ups = Array(repeating: "..", count: a.count - common)
        let rest = Array(b[common...])
        return (ups.isEmpty ? ["."] : ups).joined(separator: "\\") + "\\" + rest.joined(separator: "\\")
    }

    /// `\\?\C:\…` for a WSL-mounted drive path (`/mnt/c/…`); nil where no drive letter applies.
    static func win32Path(forPOSIX path: String) -> String? {
        let parts = components(path)
        guard parts.count >= 3, parts[0] == "mnt", parts[1].count == 1, parts[1].first?.isLetter == true else { return nil }
        return "\\\\?\\\(parts[1].uppercased()):\\" + parts[2...].joined(separator: "\\")
    }

    /// Why `path` cannot be a parent before it is opened, or nil when it is a readable regular
    /// file (or block device, as `FileStorage` accepts) starting with the VHDX signature. Each
    /// reason is the real one (a symlink loop or an over-long name is not "not found"), and a
    /// file that is not VHDX at all is called that, without the size and structure details of a
    /// failed open: it was never a candidate. A FIFO is never opened (it would block the open).
    static func problem(with path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let e = errno
            switch e {
            case ENOENT: return "not found"
            case ENOTDIR: return "not found (a part of the path is not a folder)"
            case ELOOP: return "symlink loop (too many levels of symbolic links)"
            case ENAMETOOLONG: return "name too long"
            case EACCES: return "permission denied (on a folder of the path)"
            default: return String(cString: strerror(e))
            }
        }
        // What FileStorage would open: a regular file or a block device.
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFBLK else { return "not a regular file: \(FileSystem.describe(type))" }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let e = errno
            return e == EACCES ? "permission denied" : "cannot open: \(String(cString: strerror(e)))"
        }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 8)
        let n: Int
        do throws(VHDXError) {
            n = try typed { try head.withUnsafeMutableBytes { try FileSystem.read(fd, into: $0, at: 0, path: path) } }
        } catch {
            return "cannot read: \(error.systemErrno.map { String(cString: strerror($0)) } ?? error.message)"
        }
        guard n == 8, head == DiskImage.signature else { return "not a VHDX file (it does not start with \"vhdxfile\")" }
        return nil
    }
}
