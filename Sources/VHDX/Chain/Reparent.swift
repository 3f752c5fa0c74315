import VHDXFormat

extension VHDXFile {
    /// Points this differencing image at another parent (Set-VHD -ParentPath): a moved or
    /// renamed parent, or an ancestor a merge folded the old parent into. The new parent must
    /// have the DataWriteGuid the locator records (parent_linkage, or parent_linkage2 after a
    /// merge) unless `ignoreIDMismatch`; its sector size must match, it may not be larger than
    /// this image, and its own chain may not lead back here. Only the locator changes, through
    /// the log; the virtual content and DataWriteGuid stay.
    @discardableResult
    public func reparent(to parentPath: String, options: ParentOptions = .default) throws(VHDXError) -> ParentLink.Match {
        try requireWritable()
        let (locator, match) = try planReparent(to: parentPath, options: options)
        if match == .ignored {
            // A parent it was not made against: every byte it supplies may differ, so this is
            // a change of content (DataWriteGuid renewed, the observer told).
            try beginUserVisibleChange(.reparent, 0..<virtualSize)
        }
        try setParentLocator(locator)
        self.parent = nil
        self.parentLink = nil
        return match
    }

    /// Every check of `reparent` and the locator it would write, on an image opened read-only,
    /// so a refused reparent never touches the file.
    public func planReparent(to parentPath: String, options: ParentOptions = .default) throws(VHDXError) -> (ParentLocator, ParentLink.Match) {
        guard diskType == .differencing, let old = layout.parentLocator else {
            throw VHDXError(.invalidArgument, "not a differencing image: it has no parent to change", path: storage.name)
        }
        let me = FileIdentity(path: storage.name)
        if let me, FileIdentity(path: parentPath) == me {
            throw VHDXError(.invalidArgument, "an image cannot be its own parent", path: storage.name)
        }
        let parent = try VHDXFile.openFile(path: parentPath)
        guard parent.layout.logicalSectorSize == layout.logicalSectorSize else {
            throw VHDXError(.invalidArgument, "the new parent has \(parent.layout.logicalSectorSize)-byte logical sectors, this image \(layout.logicalSectorSize)", path: parentPath)
        }
        guard parent.virtualSize <= virtualSize else {
            throw VHDXError(.invalidArgument, "the new parent (\(parent.virtualSize) bytes) is larger than this \(virtualSize)-byte image, which would hide its end", path: parentPath)
        }
        let guid = parent.header.dataWriteGUID
        let match: ParentLink.Match
        if guid == old.parentLinkage { match = .parentLinkage }
        else if guid == old.parentLinkage2, guid != .zero { match = .parentLinkage2 }
        else if options.ignoreIDMismatch { match = .ignored }
        else {
            throw VHDXError(.parentMismatch, "the new parent's DataWriteGuid {\(guid)} is neither parent_linkage \(old["parent_linkage"] ?? "-") nor parent_linkage2 \(old["parent_linkage2"] ?? "-"): it is not the disk this image was made over, or it changed since (accepting a mismatch must be asked for)",
                            path: parentPath, remedy: .acceptParentMismatch)
        }
        // The new parent's own ancestors must not include this image. An ancestor that cannot
        // be found is the user's business (reads will say so); a cycle never is.
        do { try parent.attachParents(options.withoutOverride, alsoInChain: me.map { [$0] } ?? []) } catch {
            if error.code == .cyclicChain {
                throw VHDXError(.invalidArgument, "\(parentPath) descends from this image: making it the parent would close a cycle", path: storage.name)
            }
            if error.code != .parentNotFound && error.code != .parentMismatch { throw error }
        }
        // The linkage now names the parent's current DataWriteGuid; a linkage2 left over from a
        // merge has served its purpose.
        var locator = try VHDXCreator.parentLocator(childPath: storage.name, parentPath: parentPath, dataWriteGUID: guid)
        locator.entries = locator.entries.filter { $0.key != "parent_linkage2" }
        return (locator, match)
    }
}

extension ParentOptions {
    /// The same search, without the override that named the top image's parent.
    var withoutOverride: ParentOptions {
        var o = self
        o.parentPath = nil
        return o
    }
}
