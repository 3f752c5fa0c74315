import ArgumentParser
import VHDX
import VHDXChangeTracking

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Fold a differencing image, and any layers between, into an ancestor (Merge-VHD).",
        discussion: """
            Afterwards ANCESTOR alone reads what the chain read from CHILD; it is grown first when CHILD \
            is larger (a differencing ANCESTOR cannot be). Crash-safe: the new DataWriteGuid is stored in \
            the parent_linkage2 of the layer above ANCESTOR before ANCESTOR takes it, and only ranges the \
            upper layers answer are written, so until the merge completes the chain still opens and reads \
            its original content; an interrupted merge is completed by running the same command again. \
            Other children of ANCESTOR are cut off (parent mismatch): its content changed under them. \
            The merged files are deleted once ANCESTOR is flushed and closed, unless --keep; a kept layer \
            directly above ANCESTOR with layers above it loses its link (its own content over the merged \
            ANCESTOR is not what it was).
            """
    )

    @Argument(help: "The differencing image to merge.") var child: String
    @Option(help: ArgumentHelp("The ancestor to merge into (default: CHILD's parent).", valueName: "path")) var into: String?
    @Flag(help: "Keep the merged files instead of deleting them.") var keep = false
    @Flag(help: "Progress on stderr even when it is not a terminal (a line per 5%).") var progress = false
    @Flag(help: "JSON summary on stdout.") var json = false
    @OptionGroup var parents: ParentArguments

    func validate() throws {
        try SetName.refuse(child, as: "CHILD", in: "merge", "`vhdx set delete SET SNAPSHOT` merges a checkpoint's file within the set")
        if let into { try SetName.refuse(into, as: "--into", in: "merge", "`vhdx set delete SET SNAPSHOT` merges a checkpoint's file within the set") }
    }

    func run() throws {
        do {
            let reporter = ProgressReporter(label: "merging", requested: progress)
            let r = try Merger.merge(childPath: child, intoPath: into, parents: parents.options, keepMergedFiles: keep,
                                     progress: { (done, total) throws(VHDXError) in reporter.update(done, total) },
                                     prepareAncestor: { (a) throws(VHDXError) in try ChangeTracker.attach(to: a) })
            let ancestor = r.ancestorPath ?? into ?? "?"
            if json {
                Output.data(JSON.object([
                    ("child", .string(child)), ("into", .string(ancestor)),
                    ("layers-merged", .int(UInt64(r.layersMerged))),
                    ("merged-files", .array(r.mergedPaths.map { .string($0) })),
                    ("bytes-copied", .int(r.bytesCopied)), ("bytes-zeroed", .int(r.bytesZeroed)),
                    ("virtual-size", .int(r.virtualSize)), ("grown-from", r.grownFrom.map { .int($0) } ?? .null),
                    ("data-write-guid", .string("{\(r.dataWriteGUID)}")),
                    ("files-removed", .array(r.removedPaths.map { .string($0) })),
                    ("unlinked", r.unlinkedPath.map { .string($0) } ?? .null),
                ]).text)
            } else {
                Output.data("merged \(r.layersMerged) layer\(r.layersMerged == 1 ? "" : "s") (\(r.mergedPaths.joined(separator: ", "))) into \(ancestor): "
                            + "\(Output.size(r.bytesCopied)) copied, \(Output.size(r.bytesZeroed)) made zero")
                if let from = r.grownFrom { Output.data("grew \(ancestor) from \(Output.size(from)) to \(Output.size(r.virtualSize))") }
                if !r.removedPaths.isEmpty { Output.data("removed \(r.removedPaths.joined(separator: ", "))") }
                if let u = r.unlinkedPath { Output.data("kept the merged files; \(u) no longer links to \(ancestor)") }
            }
        } catch { Output.fail(error) }
    }
}
