#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDXFormat

extension VHDXFile {
    /// Opens `path` and, if it is a differencing image, its whole parent chain. Parents are always
    /// opened read-only: writing to one would change its DataWriteGuid and cut off its children.
    public static func openChain(path: String, writable: Bool = false, parents: ParentOptions = .default) throws(VHDXError) -> VHDXFile {
        let top = try openFile(path: path, writable: writable)
        try top.attachParents(parents)
        return top
    }

    /// The image and its ancestors, child first.
    public var chain: [VHDXFile] {
        var out = [self]
        var top = self
        while let p = top.parent {
            out.append(p)
            top = p
        }
        return out
    }

    /// Resolves and opens every ancestor. Refuses cycles, absurd depths, logical sector sizes
    /// that differ from the child's, and parents whose DataWriteGuid matches neither linkage
    /// (unless `ignoreIDMismatch`).
    package func attachParents(_ options: ParentOptions) throws(VHDXError) {
        try attachParents(options, alsoInChain: [])
    }

    /// `alsoInChain`: files that count as part of the chain already (a reparent's child), so a
    /// parent among them is a cycle.
    func attachParents(_ options: ParentOptions, alsoInChain: [FileIdentity]) throws(VHDXError) {
        var seen = alsoInChain
        if let id = FileIdentity(path: storage.name) { seen.append(id) }
        var child = self
        var override = options.parentPath
        var depth = 0
        while child.diskType == .differencing, child.parent == nil {
            depth += 1
            guard depth <= options.maxDepth else {
                throw VHDXError(.unsupported, "the parent chain is deeper than \(options.maxDepth) images; refusing it as absurd (a cycle through differently named links?)",
                                path: storage.name)
            }
            let (parent, link) = try ParentResolver(child: child, options: options, override: override).resolve(seen: &seen)
            child.parent = parent
            child.parentLink = link
            child = parent
            override = nil
        }
    }
}

/// Device and inode of a file: the same file under two names is one file.
package struct FileIdentity: Equatable, Hashable, Sendable {
    package let device: UInt64
    package let inode: UInt64

    package init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }
}

/// Finds one child's parent among the candidate paths.
struct ParentResolver {
    let child: VHDXFile
    let options: ParentOptions
    let override: String?

    func resolve(seen: inout [FileIdentity]) throws(VHDXError) -> (VHDXFile, ParentLink) {
        let childPath = child.storage.name
        guard let locator = child.layout.parentLocator else {
            throw VHDXError(.corrupt, "a differencing image without a parent locator item", path: childPath)
        }
        guard locator.locatorType == KnownGUID.parentLocatorTypeVHDX else {
            throw VHDXError(.unsupported, "parent locator type {\(locator.locatorType)} is not the VHDX type", path: childPath)
        }
        guard let linkage = locator.parentLinkage else {
            throw VHDXError(.corrupt, "the parent locator has no valid parent_linkage (\(locator["parent_linkage"] ?? "missing"))", path: childPath)
        }
        let linkage2 = locator.parentLinkage2.flatMap { $0 == .zero ? nil : $0 }
        let candidates = override.map { [$0] }
            ?? ParentPaths.candidates(childPath: childPath, locator: locator, searchDirectories: options.searchDirectories)
        var tried: [String] = []
        var mismatched: (VHDXFile, String)?
        var cyclic: String?
        /// A candidate that could not be read (EIO, EACCES): it may be the parent, so nothing
        /// can be concluded about the others.
        var unreadable: VHDXError?
        for path in candidates {
            if let problem = ParentPaths.problem(with: path) { tried.append("\(path): \(problem)"); continue }
            guard let id = FileIdentity(path: path) else { tried.append("\(path): not found"); continue }
            // A file already in the chain is never a parent; keep looking (a fallback by file
            // name may hit a namesake in the chain), and call it a cycle if nothing else fits.
            if seen.contains(id) {
                tried.append("\(path): already part of the chain")
                if cyclic == nil { cyclic = path }
                continue
            }
            let parent: VHDXFile
            do { parent = try VHDXFile.openFile(path: path) } catch {
                tried.append("\(path): \(error.code): \(error.message)")
                if error.code == .io && unreadable == nil { unreadable = error }
                continue
            }
            guard parent.layout.logicalSectorSize == child.layout.logicalSectorSize else {
                tried.append("\(path): logical sector size \(parent.layout.logicalSectorSize) differs from the child's \(child.layout.logicalSectorSize)")
                continue
            }
            let guid = parent.header.dataWriteGUID
            let match: ParentLink.Match? = guid == linkage ? .parentLinkage : (guid == linkage2 ? .parentLinkage2 : nil)
            guard let match else {
                tried.append("\(path): its DataWriteGuid {\(guid)} is not the child's parent_linkage {\(linkage)}"
                             + (linkage2.map { " nor parent_linkage2 {\($0)}" } ?? ""))
                if mismatched == nil { mismatched = (parent, path) }
                continue
            }
            seen.append(id)
            return (parent, ParentLink(path: path, match: match, rejected: tried))
        }
        // An I/O error is not "not found" nor "mismatch": the parent may be the file that failed.
        if let unreadable {
            throw VHDXError(.io, "a candidate parent could not be read (\(unreadable.message)). Tried:\n  " + tried.joined(separator: "\n  "),
                            path: unreadable.path ?? childPath, cause: unreadable.cause)
        }
        if let cyclic, mismatched == nil {
            throw VHDXError(.cyclicChain, "the parent \(cyclic) is already part of the chain (a cyclic chain). Tried:\n  " + tried.joined(separator: "\n  "),
                            path: childPath)
        }
        if let (parent, path) = mismatched {
            if options.ignoreIDMismatch, let id = FileIdentity(path: path) {
                seen.append(id)
                return (parent, ParentLink(path: path, match: .ignored, rejected: tried))
            }
            throw VHDXError(.parentMismatch, "no candidate parent has the DataWriteGuid this child was made against (the parent changed since, or is another disk; accepting a mismatch must be asked for). Tried:\n  "
                            + tried.joined(separator: "\n  "), path: childPath, remedy: .acceptParentMismatch)
        }
        throw VHDXError(.parentNotFound, "the parent image was not found (name it, or a folder to search). Tried:\n  "
                        + (tried.isEmpty ? "(the locator names no path)" : tried.joined(separator: "\n  ")), path: childPath, remedy: .locateParent)
    }
}
