#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX
import VHDXChangeTracking

/// One stream of a backup folder, known from its header and trailer (`StreamEnds`).
public struct BackupStream: Sendable {
    public enum Kind: String, Sendable {
        case full, incremental, consolidated
    }

    /// The file's name in the folder (an object's key under the prefix).
    public var name: String
    public var bytes: UInt64
    public var header: StreamHeader
    public var kind: Kind
    /// What the trailer says the records carry.
    public var dataBytes: UInt64
    public var zeroBytes: UInt64
    /// The streams a restore of this one reads, oldest first (names); nil when the chain is
    /// incomplete. The shortest one when several exist (a consolidated full beside the chain it
    /// folded).
    public var restoreChain: [String]?
    /// What is missing when the chain is incomplete (the base no stream of the folder is).
    public var missing: String?
    public var isComplete: Bool { restoreChain != nil }
}

/// What `vhdx backups list` shows of a folder.
public struct BackupListing: Sendable {
    public struct Note: Sendable {
        public var name: String
        public var reason: String
    }

    public var folder: String
    /// The streams, by disk, then creation time, then name.
    public var streams: [BackupStream] = []
    /// Files that start as streams but whose header or trailer does not hold (truncated, still
    /// being written, damaged): never part of a chain.
    public var unusable: [Note] = []
    /// Files that are not streams (and subfolders, FIFOs, devices): not read further.
    public var skipped: [Note] = []
    /// Incrementals whose chain does not reach a full stream.
    public var orphaned: [BackupStream] { streams.filter { !$0.isComplete } }
}

/// Lists the export streams of a folder from their headers and trailers alone (two small reads
/// each, never the records), and works out which chains are complete: an incremental is
/// restorable when a stream of the folder is its base by restore's own rule
/// (`StreamChain.problem`) and that one is restorable, down to a full stream.
public enum BackupCatalog {
    public static func list(folder: String) throws -> BackupListing {
        if RemoteStore.names(folder) { return try list(ObjectRangedSource.listing(folder), folder: folder) }
        var names: [String] = []
        guard let dir = opendir(folder) else {
            throw ExportError(.io, "cannot list the folder: \(String(cString: strerror(errno)))", path: folder)
        }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(dir)
        var sources: [(name: String, source: RangedSource)] = []
        var skipped: [BackupListing.Note] = []
        for name in names.sorted() {
            let path = folder.hasSuffix("/") ? folder + name : folder + "/" + name
            var st = stat()
            guard stat(path, &st) == 0 else { skipped.append(.init(name: name, reason: "cannot be read: \(String(cString: strerror(errno)))")); continue }
            guard st.st_mode & S_IFMT == S_IFREG else {
                skipped.append(.init(name: name, reason: st.st_mode & S_IFMT == S_IFDIR ? "a folder (not searched)" : "not a regular file"))
                continue
            }
            sources.append((name: name, source: try FileRangedSource(path: path)))
        }
        var listing = try list(sources, folder: folder)
        listing.skipped = (skipped + listing.skipped).sorted { $0.name < $1.name }
        return listing
    }

    /// The listing of `sources` (name in the folder, source): what an object-store prefix
    /// lists the same way. An I/O error stops the listing (a stream that cannot be read now
    /// says nothing about the chain).
    package static func list(_ sources: [(name: String, source: RangedSource)], folder: String) throws -> BackupListing {
        var listing = BackupListing(folder: folder)
        for (name, source) in sources {
            // Not a typed `do`/`catch where` (swiftc 6.3 crashes on it): a Result, switched on.
            switch Result(catching: { () throws(ExportError) in try StreamEnds.probe(source) }) {
            case .success(let e):
                let h = e.header
                listing.streams.append(BackupStream(name: name, bytes: e.bytes, header: h,
                                                    kind: h.isIncremental ? .incremental : h.isConsolidated ? .consolidated : .full,
                                                    dataBytes: e.dataBytes, zeroBytes: e.zeroBytes))
            case .failure(let error):
                switch error.reason {
                case .notAnExport: listing.skipped.append(.init(name: name, reason: "not an export stream"))
                case .damaged: listing.unusable.append(.init(name: name, reason: error.message))
                default: throw error
                }
            }
        }
        listing.streams.sort {
            ($0.header.sourceDiskID.description, $0.header.created, $0.name) < ($1.header.sourceDiskID.description, $1.header.created, $1.name)
        }
        resolveChains(&listing.streams)
        return listing
    }

    /// Fills in each stream's restore chain, or what its chain is missing.
    static func resolveChains(_ streams: inout [BackupStream]) {
        var byTarget: [ChangeID: [Int]] = [:]
        for (i, s) in streams.enumerated() { byTarget[s.header.targetID, default: []].append(i) }
        var memo: [Int: (chain: [Int]?, missing: String?)] = [:]
        var visiting: Set<Int> = []
        func resolve(_ i: Int) -> (chain: [Int]?, missing: String?) {
            if let m = memo[i] { return m }
            let h = streams[i].header
            guard let base = h.baseID else { return ([i], nil) }
            guard visiting.insert(i).inserted else { return (nil, "its bases lead back to it") }
            defer { visiting.remove(i) }
            let candidates = (byTarget[base] ?? []).filter { $0 != i && StreamChain.problem(h, after: streams[$0].header, name: "") == nil }
            var best: [Int]?
            var missing: String?
            for c in candidates {
                let r = resolve(c)
                if let chain = r.chain {
                    if best.map({ chain.count + 1 < $0.count }) ?? true { best = chain + [i] }
                } else if missing == nil {
                    missing = r.missing
                }
            }
            let result: (chain: [Int]?, missing: String?)
            if let best {
                result = (best, nil)
            } else if candidates.isEmpty {
                result = (nil, h.baseStreamID == .zero ? "its base, an export at \(base)" : "its base, the export {\(h.baseStreamID)} at \(base)")
            } else {
                result = (nil, missing)
            }
            memo[i] = result
            return result
        }
        for i in streams.indices {
            let r = resolve(i)
            streams[i].restoreChain = r.chain.map { $0.map { streams[$0].name } }
            streams[i].missing = r.missing
        }
    }
}
