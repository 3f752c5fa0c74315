#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDXFormat

/// What a new differencing image looks like. Its sector sizes and VirtualDiskId are the
/// parent's (the IsVirtualDisk items are copied, [MS-VHDX] 2.6.1); the size may be larger.
public struct ChildOptions: Sendable {
    /// nil: the parent's size.
    public var virtualSize: UInt64?
    /// Hyper-V's default for differencing disks.
    public var blockSize: UInt32 = 2 << 20
    /// Log size in bytes, a multiple of 1 MiB.
    public var logSize: UInt32 = 1 << 20
    /// The creator string written into the image.
    public var creator: String = "swift-vhdx"
    /// Hyper-V's defaults for a differencing image.
    public init() {}
}

extension VHDXCreator {
    /// Creates a differencing image at `path` over the image at `parentPath`, which is only read.
    /// The locator records the parent's DataWriteGuid and its path relative to the child (and
    /// its Windows absolute path when it lies on a WSL-mounted drive).
    public static func createChild(path: String, parentPath: String, options: ChildOptions = ChildOptions(),
                                   overwrite: Bool = false) throws(VHDXError) {
        if FileIdentity(path: path) != nil, FileIdentity(path: path) == FileIdentity(path: parentPath) {
            throw VHDXError(.invalidArgument, "the child and the parent are the same file", path: path)
        }
        let parent = try VHDXFile.openFile(path: parentPath)
        var o = CreateOptions(virtualSize: options.virtualSize ?? parent.virtualSize)
        guard o.virtualSize >= parent.virtualSize else {
            throw VHDXError(.invalidArgument, "a child of \(o.virtualSize) bytes would hide the end of its \(parent.virtualSize)-byte parent; it must be at least as large",
                            path: path)
        }
        o.blockSize = options.blockSize
        o.logSize = options.logSize
        o.creator = options.creator
        o.logicalSectorSize = parent.layout.logicalSectorSize
        o.physicalSectorSize = parent.layout.physicalSectorSize
        o.virtualDiskID = parent.layout.virtualDiskID
        let locator = try parentLocator(childPath: path, parentPath: parentPath, dataWriteGUID: parent.header.dataWriteGUID)
        try writeAtomically(path, overwrite: overwrite) { (storage) throws(VHDXError) in
            let plan = try PlannedLayout(o, hasParent: true)
            var builder = ImageBuilder(storage: storage, options: o, plan: plan)
            builder.parentLocator = locator
            try builder.writeStructures()
            try builder.writeBAT { _ in .notPresent }  // every block NOT_PRESENT: all from the parent
            try storage.resize(to: plan.payloadStart)
        }
    }

    /// A VHDX-type locator naming `parentPath` as seen from `childPath`'s folder.
    package static func parentLocator(childPath: String, parentPath: String, dataWriteGUID: GUID) throws(VHDXError) -> ParentLocator {
        guard let parentReal = realPath(parentPath), let childDir = realPath(ParentPaths.directory(of: childPath)) else {
            throw VHDXError(.invalidArgument, "cannot resolve the absolute paths of the child's folder and the parent", path: parentPath)
        }
        var entries: [(key: String, value: String)] = [
            ("parent_linkage", "{\(dataWriteGUID)}"),
            ("relative_path", ParentPaths.relativeWindowsPath(from: childDir, to: parentReal)),
        ]
        if let win = ParentPaths.win32Path(forPOSIX: parentReal) { entries.append(("absolute_win32_path", win)) }
        return ParentLocator(entries: entries)
    }
}

package func realPath(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
}
