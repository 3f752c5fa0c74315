import VHDXFormat

/// What a merge did.
public struct MergeResult: Sendable {
    /// Layers folded into the ancestor: the child and any between it and the ancestor.
    public var layersMerged: Int
    /// Bytes of data the upper layers held, written into the ancestor.
    public var bytesCopied: UInt64 = 0
    /// Bytes the upper layers answered with zeros (ZERO, UNMAPPED, UNDEFINED, or the part of a
    /// child beyond a smaller parent's end), which now read as zeros in the ancestor.
    public var bytesZeroed: UInt64 = 0
    /// The ancestor's size before the merge grew it to the child's; nil when it was not grown.
    public var grownFrom: UInt64?
    /// The ancestor's virtual size after the merge.
    public var virtualSize: UInt64
    /// The ancestor's new DataWriteGuid; the layer above it holds it in parent_linkage2.
    public var dataWriteGUID: GUID
    /// Set by the path-level `Merger.merge`: the ancestor's file, the merged files (child
    /// first), the ones deleted, and an intermediate layer (kept with `keepMergedFiles`) whose
    /// link to the ancestor was cut because its content over the merged ancestor is not its own.
    public var ancestorPath: String?
    /// The files whose content was folded into the ancestor, child first.
    public var mergedPaths: [String] = []
    /// The merged files deleted afterwards.
    public var removedPaths: [String] = []
    /// A kept intermediate file whose link to the merged ancestor was removed.
    public var unlinkedPath: String?
}

/// Folds a differencing image, and any layers between it and an ancestor, into that ancestor
/// (Merge-VHD), so the ancestor alone reads what the chain read from the child.
///
/// Crash safety rests on two invariants:
///  * The chain's view never changes. Only ranges some layer above the ancestor answers are
///    written into the ancestor, and they are read through the top of the chain, so a reader of
///    the chain never sees the ancestor's bytes there, old or new or torn.
///  * The layer directly above the ancestor links to it at every instant. The new
///    DataWriteGuid G goes first into that layer's parent_linkage2 (a logged locator change,
///    made durable), and only then into the ancestor's headers (docs/vhdx-format.md §2.4, §7).
/// So a merge interrupted anywhere leaves the chain reading its original content, and running
/// it again completes it. Other children of the ancestor are cut off by the new DataWriteGuid,
/// as they must be: the ancestor's content changed under them.
///
/// Steps: `recordLinkage` (on the layer above, writable), then `fold` (on the ancestor,
/// writable: DataWriteGuid := G, grow to the child's size, copy, close). `run` does both when
/// both images are writable; `merge(childPath:…)` does the whole thing on files, including
/// the file locks this needs and deleting the merged files.
public final class Merger {
    /// The top of the chain, read through.
    package let top: VHDXFile
    /// Index of the ancestor in `top.chain` (1 = the top's parent).
    package let ancestorLayer: Int
    /// The layer directly above the ancestor, whose locator carries the new DataWriteGuid.
    package let above: VHDXFile
    package let ancestor: VHDXFile
    /// Told (bytes done, bytes total) of the ranges to fold as the copy proceeds. A throw stops
    /// the merge where it is; running it again completes it.
    package var progress: ((UInt64, UInt64) throws(VHDXError) -> Void)?

    /// Validates a merge of `top.chain[1..<ancestorLayer]` and `top` into `top.chain[ancestorLayer]`.
    /// Nothing is written here. The ancestor must be at most as large as the top; a smaller one
    /// is grown by `fold`, which a differencing ancestor cannot be.
    package init(top: VHDXFile, ancestorLayer: Int = 1) throws(VHDXError) {
        guard top.diskType == .differencing else {
            throw VHDXError(.invalidArgument, "not a differencing image: there is no parent to merge it into", path: top.storage.name)
        }
        let chain = top.chain
        guard ancestorLayer >= 1, ancestorLayer < chain.count else {
            throw VHDXError(.invalidArgument, "layer \(ancestorLayer) is not an ancestor: the open chain has \(chain.count) images (is the parent attached?)",
                            path: top.storage.name)
        }
        self.top = top
        self.ancestorLayer = ancestorLayer
        self.above = chain[ancestorLayer - 1]
        self.ancestor = chain[ancestorLayer]
        try Merger.checkSizes(child: top, ancestor: ancestor)
    }

    /// Both steps on open images: `above` and `ancestor` must be writable.
    package func run() throws(VHDXError) -> MergeResult {
        try checkLinked(above.layout.parentLocator)
        let g = try Merger.recordLinkage(in: above, ancestorDataWriteGUID: ancestor.header.dataWriteGUID)
        return try fold(newGUID: g)
    }

    /// The ancestor's DataWriteGuid must be one `above` links to (or the user accepted the
    /// mismatch when the chain was opened): otherwise it changed since, and folding into it
    /// would give neither the old chain nor the new ancestor.
    private func checkLinked(_ locator: ParentLocator?) throws(VHDXError) {
        let current = ancestor.header.dataWriteGUID
        guard let locator, current == locator.parentLinkage || (current == locator.parentLinkage2 && current != .zero)
            || above.parentLink?.match == .ignored else {
            throw VHDXError(.parentMismatch, "the ancestor's DataWriteGuid {\(current)} is neither parent_linkage nor parent_linkage2 of \(above.storage.name): it changed since the chain was opened",
                            path: ancestor.storage.name)
        }
    }

    /// Refuses, before anything changes, the size combinations a merge cannot honour.
    static func checkSizes(child: VHDXFile, ancestor: VHDXFile) throws(VHDXError) {
        let c = child.virtualSize, a = ancestor.virtualSize
        if c < a {
            throw VHDXError(.unsupported, "\(child.storage.name) (\(c) bytes) is smaller than the ancestor (\(a) bytes): the merged disk would keep the ancestor's bytes past the child's end. Nothing was changed",
                            path: ancestor.storage.name)
        }
        if c > a, ancestor.diskType == .differencing {
            throw VHDXError(.unsupported, "the ancestor is a differencing image of \(a) bytes and \(child.storage.name) has \(c) bytes; growing a differencing image is not supported, so nothing was changed",
                            path: ancestor.storage.name)
        }
    }

    // MARK: - Step 1: the linkage

    /// Stores `newGUID` in parent_linkage2 of `above`, the layer directly over the ancestor, in
    /// one logged locator change, and closes `above`'s log so the change is durable before the
    /// ancestor's DataWriteGuid changes. When the ancestor's current DataWriteGuid `current`
    /// matched parent_linkage2 (a merge that was interrupted after changing it), the same
    /// change moves it into parent_linkage, so `above` keeps linking to the ancestor whichever
    /// of the two changes a crash leaves. Returns `newGUID`.
    @discardableResult
    package static func recordLinkage(in above: VHDXFile, ancestorDataWriteGUID current: GUID, newGUID: GUID = .random()) throws(VHDXError) -> GUID {
        try above.requireWritable()
        guard above.diskType == .differencing, var locator = above.layout.parentLocator else {
            throw VHDXError(.invalidArgument, "not a differencing image: it has no parent locator to record the merge in", path: above.storage.name)
        }
        guard let linkage = locator.parentLinkage else {
            throw VHDXError(.corrupt, "the parent locator has no valid parent_linkage (\(locator["parent_linkage"] ?? "missing"))", path: above.storage.name)
        }
        guard newGUID != .zero, newGUID != current, newGUID != linkage else {
            throw VHDXError(.invalidArgument, "the new DataWriteGuid {\(newGUID)} must differ from zero, the ancestor's current one and parent_linkage", path: above.storage.name)
        }
        // With --ignore-id-mismatch neither field matches; parent_linkage then stays as it was.
        let keepLinkage = locator.parentLinkage2 == current && current != .zero ? current : linkage
        var entries: [(key: String, value: String)] = []
        for e in locator.entries where e.key != "parent_linkage2" {
            if e.key == "parent_linkage" {
                entries.append((e.key, keepLinkage == linkage ? e.value : "{\(keepLinkage)}"))
                entries.append(("parent_linkage2", "{\(newGUID)}"))
            } else {
                entries.append(e)
            }
        }
        locator.entries = entries
        try above.setParentLocator(locator)
        try above.close()
        return newGUID
    }

    // MARK: - Step 2: the ancestor

    /// Sets the ancestor's DataWriteGuid to `newGUID` (which `above` must already hold in
    /// parent_linkage2), grows it to the top's size if it is smaller, folds every range a layer
    /// above it answers into it, and closes it (flushed, empty log).
    package func fold(newGUID g: GUID) throws(VHDXError) -> MergeResult {
        try ancestor.requireWritable()
        guard let locator = above.layout.parentLocator, locator.parentLinkage2 == g, locator.parentLinkage != g else {
            throw VHDXError(.invalidArgument, "the layer above the ancestor does not hold {\(g)} in parent_linkage2 (record the linkage first): changing the ancestor's DataWriteGuid would cut it off",
                            path: above.storage.name)
        }
        try checkLinked(locator)
        try Merger.checkSizes(child: top, ancestor: ancestor)

        try ancestor.renewDataWriteGUID(to: g)
        var result = MergeResult(layersMerged: ancestorLayer, virtualSize: top.virtualSize, dataWriteGUID: g)
        if top.virtualSize > ancestor.virtualSize {
            result.grownFrom = ancestor.virtualSize
            if ancestor.diskType == .fixed {
                // Growing a fixed disk puts its new blocks at the end of the referenced space
                // without clearing what the file holds there (VHDXFile+Resize.swift), so bytes
                // leaked past that end (by an earlier crash) would become the new blocks'
                // content where the chain reads zeros. That space is unreferenced: release it.
                let size = try ancestor.storage.size()
                if size > ancestor.nextFreeOffset {
                    try ancestor.storage.discard(offset: ancestor.nextFreeOffset, length: size - ancestor.nextFreeOffset)
                }
            }
            // The new blocks read as zeros, as the chain read there (past the ancestor's end).
            try ancestor.resize(to: top.virtualSize)
        }
        try copy(&result)
        try ancestor.close()
        return result
    }

    /// Writes every range a layer above the ancestor answers into the ancestor, a window at a
    /// time (memory stays flat whatever the disk size).
    private func copy(_ result: inout MergeResult) throws(VHDXError) {
        let k = ancestorLayer
        let size = top.virtualSize
        // A multiple of every block size in the chain (all powers of two), so a block that
        // must read as zeros is always seen whole and becomes one ZERO entry.
        let window = max(top.chain.map(\.blockSize).max() ?? 0, 32 << 20)
        var total: UInt64 = 0
        try top.forEachResolvedExtent { (e) throws(VHDXError) in if e.layer < k { total += e.length } }
        var done: UInt64 = 0
        try progress?(0, total)
        var buffer = [UInt8](repeating: 0, count: 4 << 20)
        var w: UInt64 = 0
        while w < size {
            // Collected before writing: the ancestor's BAT changes under the resolution.
            let extents = try top.resolvedExtents(from: w, to: min(size, w + window)).filter { $0.layer < k }
            for e in extents {
                if e.kind == .data {
                    var v = e.virtualOffset
                    while v < e.end {
                        let n = Int(min(UInt64(buffer.count), e.end - v))
                        try typed { try buffer.withUnsafeMutableBytes { b in
                            let piece = UnsafeMutableRawBufferPointer(rebasing: b[0..<n])
                            // Through the top: the layers above answer here, so this is what the chain reads.
                            try top.read(into: piece, at: v)
                            try ancestor.write(UnsafeRawBufferPointer(piece), at: v)
                        } }
                        v += UInt64(n)
                        done += UInt64(n)
                        result.bytesCopied += UInt64(n)
                        try progress?(done, total)
                    }
                } else {
                    try makeZero(e.virtualOffset, e.end)
                    done += e.length
                    result.bytesZeroed += e.length
                    try progress?(done, total)
                }
            }
            w += window
        }
    }

    /// Makes [start, end) of the ancestor read as zeros. Only where the ancestor (through its
    /// own parents, if it has any) holds data: every other state already reads as zeros, in
    /// reads and writes alike, and leaving it saves a logged change per block.
    private func makeZero(_ start: UInt64, _ end: UInt64) throws(VHDXError) {
        let data = try ancestor.resolvedExtents(from: start, to: end).filter { $0.kind == .data }
        for d in data { try ancestor.writeZeroes(at: d.virtualOffset, length: d.length) }
    }
}
