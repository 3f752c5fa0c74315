#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX
import VHDXChangeTracking
import VHDXFormat

/// How a new set's tracking is set up: every checkpoint seals a change ID, so a set always
/// tracks its leaf.
public struct SetTrackingOptions: Sendable {
    public var granule: UInt64?
    public var history: UInt32?
    public init(granule: UInt64? = nil, history: UInt32? = nil) {
        self.granule = granule
        self.history = history
    }
}

extension VHDSet {
    /// New-VHD with a `.vhds` path: a set whose first backing file, `<name>_<guid>.avhdx` beside
    /// it (a plain dynamic or fixed VHDX, despite the extension, as Hyper-V names them), is
    /// created with `options` and tracks changes. The backing file is made first and the set
    /// file last, each atomically, so a crash never leaves a set naming a missing file (at
    /// worst an unreferenced backing file).
    @discardableResult
    /// `folder` is where backing files go (this one and every checkpoint's), relative to the
    /// set file's folder and inside it ("" is that folder); it is created if missing.
    public static func create(path: String, options: CreateOptions, tracking: SetTrackingOptions = SetTrackingOptions(),
                              folder: String = "", overwrite: Bool = false) throws(VHDXError) -> SetRecord {
        try refuseExisting(path, overwrite: overwrite)
        try makeFolder(folder, besideSet: path)
        var base = path.split(separator: "/").last.map(String.init) ?? "set"
        if base.hasSuffix(".vhds") { base.removeLast(5) }
        let leaf = SetPath.join(folder, "\(base)_\(GUID.random()).avhdx")
        let setFolder = VHDSet.folder(of: path)
        let leafAbsolute = SetPath.join(setFolder == "." ? "" : setFolder, leaf)
        try requireInside(leafAbsolute, root: setFolder, what: "the new backing file", setPath: path)
        try VHDXCreator.create(path: leafAbsolute, options: options)
        do {
            let image = try VHDXFile.openFile(path: leafAbsolute, writable: true)
            try ChangeTracking.enable(image, granule: tracking.granule, history: tracking.history)
            try image.close()
            return try writeNewSet(path, leaf: leaf, folder: folder, diskID: image.layout.virtualDiskID, overwrite: overwrite)
        } catch {
            FileSystem.removeQuietly(leafAbsolute)
            throw error
        }
    }

    /// Convert-VHD to a `.vhds`: the disk becomes the set's only backing file, referenced where
    /// it is (it must lie in the set file's folder or below it: set paths never leave that
    /// tree). Tracking is enabled on it if it was not. Nothing is moved or copied.
    @discardableResult
    public static func create(path: String, from disk: String, tracking: SetTrackingOptions = SetTrackingOptions(),
                              folder: String = "", overwrite: Bool = false) throws(VHDXError) -> SetRecord {
        try refuseExisting(path, overwrite: overwrite)
        try makeFolder(folder, besideSet: path)
        guard let rel = relativePath(of: disk, inFolderOf: path) else {
            throw VHDXError(.invalidArgument, "a set's backing files live in the set file's folder or below it; move the disk there first (set paths never leave the set's folder)", path: disk)
        }
        let image = try VHDXFile.openFile(path: disk, writable: true)
        guard image.diskType != .differencing else {
            throw VHDXError(.unsupported, "a differencing disk cannot start a set (its parents would be outside the set): flatten or merge it first", path: disk, remedy: .flattenFirst)
        }
        if try ChangeTracker.attach(to: image) == nil {
            try ChangeTracking.enable(image, granule: tracking.granule, history: tracking.history)
        }
        let diskID = image.layout.virtualDiskID
        try image.close()
        return try writeNewSet(path, leaf: rel, folder: folder, diskID: diskID, overwrite: overwrite)
    }

    static func refuseExisting(_ path: String, overwrite: Bool) throws(VHDXError) {
        if !overwrite, FileIdentity(path: path) != nil {
            throw VHDXError(.invalidArgument, "already exists (replacing it must be asked for)", path: path, remedy: .overwrite)
        }
    }

    static func writeNewSet(_ path: String, leaf: String, folder: String, diskID: GUID, overwrite: Bool) throws(VHDXError) -> SetRecord {
        let record = SetRecord(setID: .random(), virtualDiskID: diskID, created: now(), defaultFolder: folder, leafPath: leaf)
        let bytes = SetFile.initialBytes(record)
        try writeAtomically(path, overwrite: overwrite) { (storage) throws(VHDXError) in try storage.write(bytes, at: 0) }
        return record
    }

    /// Checks the default folder by the set's path rules and creates it (and its parents)
    /// inside the set file's folder.
    static func makeFolder(_ folder: String, besideSet path: String) throws(VHDXError) {
        guard !folder.isEmpty else { return }
        if let p = SetPath.problem(folder) {
            throw VHDXError(.invalidArgument, "the folder for backing files \(SetPath.printable(folder)) \(p)", path: path)
        }
        let setFolder = VHDSet.folder(of: path)
        var dir = setFolder
        for c in folder.split(separator: "/") {
            dir += "/" + c
            // Each component checked before it is used: an existing one that is a symbolic
            // link leading out of the set's folder is refused before anything is made in it.
            try requireInside(dir, root: setFolder, what: "the folder for backing files \(SetPath.printable(folder))", setPath: path)
            if mkdir(dir, 0o755) != 0 && errno != EEXIST {
                let e = errno
                throw VHDXError(.io, "cannot create the folder for backing files: \(String(cString: strerror(e)))", path: dir, cause: Errno(e))
            }
        }
    }

    /// `file`'s path relative to the folder of `setPath`, when it lies inside it.
    static func relativePath(of file: String, inFolderOf setPath: String) -> String? {
        guard let f = realPath(file), let d = realPath(VHDSet.folder(of: setPath)) else { return nil }
        let prefix = d == "/" ? "/" : d + "/"
        guard f.hasPrefix(prefix) else { return nil }
        let rel = String(f.dropFirst(prefix.count))
        return SetPath.problem(rel) == nil ? rel : nil
    }
}
