#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX
import VHDXChangeTracking
import VHDXFormat

/// A VHD Set (`.vhds`): a small file of our own layout (SET-FORMAT.md) naming the chain of
/// backing files that holds the data: the active leaf, which reads and writes go to, and the
/// frozen files of its checkpoints.
///
/// Opening takes the set file's lock: shared for reading, exclusive for writing, so a second
/// writer (a `checkpoint` during a `delete`, a `write` through the set while it is being
/// changed) gets "in use". A writable open first finishes what an interrupted operation left
/// (see `recover`); a read-only open never writes anything.
public final class VHDSet {
    /// The set file, as given.
    public let path: String
    /// The folder every path in the set is relative to.
    public let folder: String
    public let writable: Bool
    package let file: SetFile
    public var record: SetRecord { file.record }
    /// What `check` reports about the set file itself (a damaged copy that was not used).
    public var copyProblem: String? { file.otherCopyProblem }

    init(path: String, file: SetFile, writable: Bool) {
        self.path = path
        self.folder = VHDSet.folder(of: path)
        self.file = file
        self.writable = writable
    }

    /// Opens the set at `path`; writable opens complete an interrupted operation first.
    public static func open(path: String, writable: Bool = false) throws(VHDXError) -> VHDSet {
        let storage = try FileStorage(path: path, mode: writable ? .readWrite : .readOnly)
        let set = VHDSet(path: path, file: try SetFile(storage: storage), writable: writable)
        if writable { try set.recover() }
        return set
    }

    /// Whether `path` names a set: the `.vhds` extension in any case (the name says set, so
    /// whatever the file holds is judged as a set: an error then says what it is), or a file
    /// starting with our set signature under any name. What the CLI uses to route an argument.
    /// A file that opens but cannot be read (EIO) throws: guessing "not a set" would route a
    /// set to the image commands, which would call it a corrupt image.
    public static func looksLikeSet(_ path: String) throws(VHDXError) -> Bool {
        if path.lowercased().hasSuffix(".vhds") { return true }
        guard let storage = try? FileStorage(path: path, lock: false), try storage.size() >= 8 else { return false }
        return try storage.read(count: 8, at: 0) == SetFileLayout.signature
    }

    /// A path of the set made usable from here.
    public func absolute(_ relative: String) -> String {
        folder == "." ? relative : SetPath.join(folder, relative)
    }

    public var leafPath: String { absolute(record.leafPath) }

    /// Replaces the record (through the other copy). Only writable opens write.
    func commit(_ next: SetRecord) throws(VHDXError) {
        guard writable else { throw VHDXError(.readOnly, "the set was opened read-only", path: path) }
        try file.write(next)
    }

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(max(0, ts.tv_sec)) * 1000 + UInt64(ts.tv_nsec / 1_000_000)
    }

    /// A new backing file's name: the set's name and a fresh GUID, as Hyper-V names them.
    /// Its folder (the default folder) must lead to a folder inside the set's tree.
    func newBackingPath() throws(VHDXError) -> String {
        var base = path.split(separator: "/").last.map(String.init) ?? "set"
        if base.hasSuffix(".vhds") { base.removeLast(5) }
        if !record.defaultFolder.isEmpty { _ = try contained(record.defaultFolder) }
        return SetPath.join(record.defaultFolder, "\(base)_\(GUID.random()).avhdx")
    }

    func snapshotOrThrow(_ id: GUID) throws(VHDXError) -> SnapshotEntry {
        guard let e = record.snapshot(id) else {
            throw VHDXError(.invalidArgument, "the set has no snapshot {\(id)}", path: path)
        }
        return e
    }

    /// Finds a snapshot by id, or by a unique prefix of its id as `list` prints it.
    public func findSnapshot(_ text: String) throws(VHDXError) -> SnapshotEntry {
        let t = text.lowercased().trimmingBraces()
        if let g = GUID(text: t), let e = record.snapshot(g) { return e }
        let matches = record.snapshots.filter { $0.id.description.lowercased().hasPrefix(t) && !t.isEmpty }
        guard matches.count == 1 else {
            throw VHDXError(.invalidArgument, matches.isEmpty ? "the set has no snapshot \(SetPath.printable(text))"
                            : "\(SetPath.printable(text)) matches \(matches.count) snapshots; give more of the id", path: path)
        }
        return matches[0]
    }
}

extension String {
    func trimmingBraces() -> String {
        var s = Substring(self)
        if s.first == "{" { s = s.dropFirst() }
        if s.last == "}" { s = s.dropLast() }
        return String(s)
    }
}
