#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDXFormat

extension Merger {
    /// Merge-VHD on files: folds `childPath` (and every layer between it and the ancestor) into
    /// `intoPath`, default the child's parent. The chain is found as `openChain` finds it, with
    /// `parents`.
    ///
    /// 1. The chain is opened read-only to plan: which file is the ancestor, sizes, GUIDs.
    /// 2. The layer above the ancestor alone is opened writable and gets the new DataWriteGuid
    ///    in parent_linkage2 (durable when this step ends).
    /// 3. The chain is opened again, read-only, its ancestor handle swapped for a writable one;
    ///    the ancestor's DataWriteGuid changes, it grows if needed, the ranges the upper layers
    ///    answer are folded in, and it is flushed and closed.
    /// 4. Only then are the merged files deleted, the child first (`keepMergedFiles`: kept; an
    ///    intermediate layer above the ancestor then loses its link to it, see `MergeResult`).
    /// Interrupted anywhere before 4, the chain still reads its original content and running
    /// the same merge again completes it. `prepareAncestor` is given the ancestor's writable
    /// handle before anything is written to it (the CLI attaches change tracking there).
    public static func merge(childPath: String, intoPath: String? = nil, parents: ParentOptions = .default,
                             keepMergedFiles: Bool = false,
                             progress: ((UInt64, UInt64) throws(VHDXError) -> Void)? = nil,
                             prepareAncestor: ((VHDXFile) throws(VHDXError) -> Void)? = nil) throws(VHDXError) -> MergeResult {
        let plan = try MergePlan(childPath: childPath, intoPath: intoPath, parents: parents)
        let k = plan.ancestorLayer

        // Step 2 with no other handle open: a writable open takes an exclusive flock, which
        // the chain's shared ones would refuse (flock is per open file description, so even
        // within this process).
        let g: GUID
        do {
            let above = try VHDXFile.openFile(path: plan.paths[k - 1], writable: true)
            guard above.layout.parentLocator == plan.aboveLocator else {
                throw VHDXError(.inUse, "the parent locator changed while the merge was starting (another program at work?); nothing was merged, run it again",
                                path: plan.paths[k - 1])
            }
            g = try recordLinkage(in: above, ancestorDataWriteGUID: plan.ancestorGUID)
        }

        var result: MergeResult
        do {
            let top = try VHDXFile.openChain(path: childPath, parents: parents)
            let above = try plan.verify(top)
            try reopenParentWritable(of: above)
            // The ancestor's own observer (change tracking) sees every range folded into it.
            if let prepareAncestor, let ancestor = above.parent { try prepareAncestor(ancestor) }
            let merger = try Merger(top: top, ancestorLayer: k)
            merger.progress = progress
            result = try merger.fold(newGUID: g)
        }
        // Every handle is closed now; the ancestor was flushed and its log emptied by fold.

        result.ancestorPath = plan.paths[k]
        result.mergedPaths = Array(plan.paths[0..<k])
        if keepMergedFiles {
            if k >= 2 {
                try unlinkFromMergedAncestor(plan.paths[k - 1], guid: g)
                result.unlinkedPath = plan.paths[k - 1]
            }
        } else {
            result.removedPaths = try remove(result.mergedPaths)
        }
        return result
    }

    /// Swaps `child`'s read-only parent for a writable open of the same file, keeping the
    /// parent's own ancestors and both links. The read-only handle is let go first: its
    /// shared flock would refuse the writable open.
    static func reopenParentWritable(of child: VHDXFile) throws(VHDXError) {
        guard let (grandparent, parentLink, path) = detachParent(of: child) else {
            throw VHDXError(.parentNotFound, "the image has no open parent to reopen writable", path: child.storage.name)
        }
        let writable = try VHDXFile.openFile(path: path, writable: true)
        writable.parent = grandparent
        writable.parentLink = parentLink
        child.parent = writable
    }

    /// Takes the parent off `child`; the handle is released (its file closed) when this
    /// returns. Gives back what its replacement needs.
    private static func detachParent(of child: VHDXFile) -> (VHDXFile?, ParentLink?, String)? {
        guard let old = child.parent else { return nil }
        child.parent = nil
        return (old.parent, old.parentLink, old.storage.name)
    }

    /// After a merge across intermediate layers that are kept: the layer above the ancestor
    /// links to it through parent_linkage2 only for the merge's sake. Over the merged ancestor
    /// its content, and that of its other children, is no longer its own, so the link goes
    /// and opening it reports a mismatch instead of reading wrong data. (The top of a depth-1
    /// merge keeps its link: over the merged ancestor it reads exactly what it did.)
    static func unlinkFromMergedAncestor(_ path: String, guid: GUID) throws(VHDXError) {
        let image = try VHDXFile.openFile(path: path, writable: true)
        guard var locator = image.layout.parentLocator, locator.parentLinkage2 == guid else { return }
        locator.entries = locator.entries.filter { $0.key != "parent_linkage2" }
        try image.setParentLocator(locator)
        try image.close()
    }

    /// Deletes the merged files, child first, and makes the deletions durable.
    package static func remove(_ paths: [String]) throws(VHDXError) -> [String] {
        var removed: [String] = []
        for p in paths {
            do throws(VHDXError) {
                try FileSystem.unlink(p)
            } catch {
                let why = error.systemErrno.map { String(cString: strerror($0)) } ?? error.message
                throw VHDXError(.io, "the merge is complete, but deleting this merged file failed (\(why))"
                                + (removed.isEmpty ? "" : "; already deleted: \(removed.joined(separator: ", "))"), path: p, cause: error.cause)
            }
            removed.append(p)
        }
        var dirs: [String] = []
        for p in paths where !dirs.contains(ParentPaths.directory(of: p)) { dirs.append(ParentPaths.directory(of: p)) }
        for d in dirs { try FileSystem.synchronizeDirectory(d) }
        return removed
    }
}

/// What the read-only look at the chain decided, before anything is written.
struct MergePlan {
    /// chain[0...ancestorLayer] as opened, child first.
    let paths: [String]
    let identities: [FileIdentity?]
    let ancestorLayer: Int
    let ancestorGUID: GUID
    let aboveLocator: ParentLocator

    init(childPath: String, intoPath: String?, parents: ParentOptions) throws(VHDXError) {
        let top = try VHDXFile.openChain(path: childPath, parents: parents)
        guard top.diskType == .differencing else {
            throw VHDXError(.invalidArgument, "not a differencing image: there is no parent to merge it into", path: childPath)
        }
        let chain = top.chain
        var k = 1
        if let intoPath {
            guard let target = FileIdentity(path: intoPath) else {
                throw VHDXError(.invalidArgument, "the image to merge into does not exist", path: intoPath)
            }
            guard FileIdentity(path: chain[0].storage.name) != target else {
                throw VHDXError(.invalidArgument, "cannot merge an image into itself", path: intoPath)
            }
            guard let i = chain.indices.dropFirst().first(where: { FileIdentity(path: chain[$0].storage.name) == target }) else {
                throw VHDXError(.invalidArgument, "not an ancestor of \(childPath), whose chain is \(chain.map(\.storage.name).joined(separator: " -> ")); nothing was changed",
                                path: intoPath)
            }
            k = i
        }
        try Merger.checkSizes(child: top, ancestor: chain[k])
        guard let locator = chain[k - 1].layout.parentLocator else {
            throw VHDXError(.corrupt, "a differencing image without a parent locator item", path: chain[k - 1].storage.name)
        }
        paths = chain[0...k].map(\.storage.name)
        identities = paths.map { FileIdentity(path: $0) }
        ancestorLayer = k
        ancestorGUID = chain[k].header.dataWriteGUID
        aboveLocator = locator
    }

    /// The reopened chain must be the planned one (no file swapped in between); returns the
    /// layer above the ancestor.
    func verify(_ top: VHDXFile) throws(VHDXError) -> VHDXFile {
        let chain = top.chain
        guard chain.count > ancestorLayer,
              (0...ancestorLayer).allSatisfy({ FileIdentity(path: chain[$0].storage.name) == identities[$0] }) else {
            throw VHDXError(.inUse, "the chain changed while the merge was starting (it was \(paths.joined(separator: " -> ")), now \(chain.map(\.storage.name).joined(separator: " -> "))); run the merge again",
                            path: paths[0])
        }
        return chain[ancestorLayer - 1]
    }
}
