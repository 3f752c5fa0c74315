import VHDX
import VHDXChangeTracking
import VHDXFormat
import VHDXSets

/// Opens what `vhdx serve SOURCE` serves: a `.vhdx`, an `.avhdx` chain's top, a `SET.vhds`,
/// or an exported chain, with `--read-only`, `--overlay` or `--checkpoint`.
package enum ServedSource {
    /// `log` receives one line per event worth telling the operator (an ID not offered, and why).
    ///
    /// Throws `VHDXError` (the CLI's exit codes) when SOURCE cannot be served as asked. Nothing is
    /// written to any file before the open succeeds, except `--overlay`'s new child and
    /// `--checkpoint`'s checkpoint (both undone if the open fails after them).
    package static func open(_ path: String, options: ServeSourceOptions,
                             log: @escaping @Sendable (String) -> Void) throws -> any ServedDisk {
        if options.checkpoint {
            if options.overlay != nil {
                throw VHDXError(.invalidArgument, "--checkpoint and --overlay do not go together: --checkpoint serves a set's frozen checkpoint read-only, --overlay serves a backup read-write through a new child; choose one", path: path)
            }
            guard try VHDSet.looksLikeSet(path) else {
                throw VHDXError(.invalidArgument, "--checkpoint needs a VHD Set (.vhds): a checkpoint freezes the set's leaf while its guest keeps writing to a new one. A plain disk is consistent while served (the server holds its writer lock): serve it without --checkpoint", path: path)
            }
            return try checkpoint(path, log: log)
        }
        if let child = options.overlay {
            if options.readOnly {
                throw VHDXError(.invalidArgument, "--overlay serves read-write (every write goes into the new child); with --read-only there is nothing to put in it: leave out one of them", path: path)
            }
            return try overlay(path, child: child, log: log)
        }
        let writable = !options.readOnly
        if try VHDSet.looksLikeSet(path) {
            let set = try VHDSet.open(path: path, writable: writable)
            let top = try set.openLeaf(writable: writable)
            try ChangeTracker.attach(to: top)
            let readers = writable ? nil : try ReaderPool(count: readerCount) { () throws(VHDXError) in try set.openLeaf() }
            return EngineDisk(top: top, hold: .set(set), readOnly: !writable,
                              description: describe(top, "VHD Set \(path), active leaf"), readers: readers, log: log)
        }
        // The chain resolved as every command resolves it; tracking attached as TrackedOpen does,
        // so each write is seen by it and renews DataWriteGuid through it.
        let top = try VHDXFile.openChain(path: path, writable: writable)
        try ChangeTracker.attach(to: top)
        let readers = writable ? nil : try ReaderPool(count: readerCount) { () throws(VHDXError) in try VHDXFile.openChain(path: path) }
        return EngineDisk(top: top, hold: .chain, readOnly: !writable, description: describe(top, path), readers: readers, log: log)
    }

    /// `--checkpoint`: a checkpoint of the set, the set released (its guest writes to the new
    /// leaf meanwhile), the frozen chain served read-only; `close` deletes the checkpoint
    /// keeping its reference point.
    static func checkpoint(_ path: String, log: @escaping @Sendable (String) -> Void) throws -> any ServedDisk {
        let (entry, frozen) = try { () throws(VHDXError) -> (SnapshotEntry, String) in
            let set = try VHDSet.open(path: path, writable: true)
            let entry = try set.checkpoint()
            return (entry, set.absolute(entry.path))
        }()  // the set (and its lock) is let go here
        do {
            let top = try VHDXFile.openChain(path: frozen)
            try ChangeTracker.attach(to: top)
            let readers = try ReaderPool(count: readerCount) { () throws(VHDXError) in try VHDXFile.openChain(path: frozen) }
            log("\(path): checkpoint {\(entry.id)} taken\(entry.changeID.map { " (change ID \($0))" } ?? ""); serving its frozen chain read-only; the set is free for its guest meanwhile")
            return EngineDisk(top: top, hold: .checkpoint(setPath: path, snapshot: entry.id), readOnly: true,
                              description: describe(top, "VHD Set \(path), checkpoint {\(entry.id)}"), readers: readers, log: log)
        } catch {
            if let set = try? VHDSet.open(path: path, writable: true) { _ = try? set.delete(entry.id, keepReference: true) }
            throw error
        }
    }

    /// `--overlay CHILD`: a new differencing child of SOURCE (a set: of its active leaf, the
    /// set held shared so nobody writes to the leaf meanwhile), served read-write; SOURCE's
    /// files are only read. The child tracks as its parent does (as a set checkpoint's new
    /// leaf does), so the backup's change IDs stay answerable through it.
    static func overlay(_ path: String, child: String, log: @escaping @Sendable (String) -> Void) throws -> any ServedDisk {
        var set: VHDSet?
        let parentPath: String
        let chain: [String]
        if try VHDSet.looksLikeSet(path) {
            let s = try VHDSet.open(path: path)
            chain = [path] + (try s.openLeaf()).chain.map(\.path)
            parentPath = s.leafPath
            set = s
        } else {
            chain = try VHDXFile.openChain(path: path).chain.map(\.path)
            parentPath = path
        }
        if FileIdentity(path: child) != nil || chain.contains(child) {
            let role = chain.contains { FileIdentity(path: $0) == FileIdentity(path: child) } ? " (it is a file of SOURCE's chain)" : ""
            throw VHDXError(.invalidArgument, "--overlay makes a new file, and \(child) exists\(role): name a file that does not exist yet", path: child,
                            remedy: .overwrite)
        }
        try VHDXCreator.createChild(path: child, parentPath: parentPath)
        do {
            let top = try VHDXFile.openChain(path: child, writable: true)
            if let parent = top.parent { try ChangeTracking.followParent(top, parent: parent) }
            try ChangeTracker.attach(to: top)
            log("\(child): new overlay over \(path); every write goes into it, \(path) stays as it is")
            return EngineDisk(top: top, hold: .overlay(child: child, set: set), readOnly: false,
                              description: describe(top, "\(path) with overlay \(child)"), log: log)
        } catch {
            FileSystem.removeQuietly(child)
            throw error
        }
    }

    /// Read-only exports read on this many handles at once: nbdcopy's four connections (more
    /// gain nothing on the cores this is built for, and each handle has its own caches).
    static let readerCount = 4

    static func describe(_ top: VHDXFile, _ what: String) -> String {
        let n = top.chain.count
        return "\(what) (\(top.diskType) VHDX\(n > 1 ? ", chain of \(n) files" : ""))"
    }
}
