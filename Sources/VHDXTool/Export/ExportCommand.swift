import ArgumentParser
import VHDXChangeTracking
import VHDXExport

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a tracked disk, chain or VHD Set: full, or incremental since the previous export.",
        discussion: """
            The consistent point: SRC (a .vhdx, an .avhdx chain's top, or a .vhds) is held under its \
            writer lock and a new change ID is sealed (a set: a checkpoint is taken, read, and deleted \
            with its reference point kept). The export records SRC's disk id and the change IDs it spans.

            OUT ending in .vhdx: a full image. OUT ending in .avhdx: a differencing image over --base \
            (an earlier .vhdx/.avhdx export) holding exactly the ranges changed since it. Any other \
            name, or - for stdout: the stream (Sources/VHDXExport/EXPORT-FORMAT.md), extents compressed \
            on every core when it pays. Without --base/--since: a full export. OUT is written to a \
            temporary file and renamed; an existing OUT is replaced only with --force.

            Exit codes: 0 exported; 4 change tracking cannot answer from the base (reset, expired, \
            unknown, another disk's): take a full export; 3 the base is of another disk or was \
            modified; 2 the base is damaged; 1 other errors; 64 bad usage.
            """
    )

    @Argument(help: "The tracked disk: .vhdx, .avhdx or .vhds.") var source: String
    @Argument(help: "The output: NAME.vhdx, NAME.avhdx, a stream file, s3://BUCKET/KEY (a stream, uploaded in parts, published whole), or - for stdout.") var output: String
    @Option(help: "The previous export (stream file or s3:// object, .vhdx or .avhdx): an incremental from the change ID it holds.") var base: String?
    @Option(help: "An incremental from this change ID (no previous export to name).") var since: String?
    @Flag(name: [.short, .long], help: "Progress on stderr even when it is not a terminal.") var progress = false
    @Flag(help: "Replace OUT if it exists.") var force = false
    @Flag(help: "A JSON summary (on stderr when OUT is -).") var json = false
    @OptionGroup var objectStore: ObjectStoreOptions

    func validate() throws {
        if base != nil && since != nil { throw ValidationError("give --base or --since, not both") }
    }

    func run() throws {
        objectStore.apply(to: [source, output, base])
        let summary: ExportSummary
        do {
            var options = ExportOptions(base: base, overwrite: force)
            // Malformed text was refused as bad usage before `run` (`ChangeIDArgument.check`).
            if let since { options.since = try ChangeIDArgument.parse(since, option: "--since") }
            let reporter = ProgressReporter(label: "export", requested: progress)
            summary = try Exporter.export(source, to: output, options: options, progress: reporter.update)
        } catch { ExportExit.fail(error) }
        let h = summary.header
        let text: String
        if json {
            text = JSON.object([
                ("kind", .string(h.isIncremental ? "incremental" : "full")),
                ("form", .string(summary.form.rawValue)),
                ("output", .string(output)),
                ("stream-id", .string(h.streamID.description)),
                ("disk-id", .string(h.sourceDiskID.description)),
                ("base-id", h.baseID.map { .string($0.description) } ?? .null),
                ("target-id", .string(h.targetID.description)),
                ("virtual-size", .int(h.virtualSize)),
                ("scanned-bytes", .int(summary.scannedBytes)),
                ("changed-bytes", .int(summary.dataBytes + (h.isIncremental ? summary.zeroBytes : 0))),
                ("data-bytes", .int(summary.dataBytes)),
                ("zero-bytes", .int(summary.zeroBytes)),
                ("written-bytes", .int(summary.writtenBytes)),
                ("ratio", .double((summary.ratio * 1000).rounded() / 1000)),
                ("seconds", .double((summary.seconds * 1000).rounded() / 1000)),
                ("upload", ExportExit.json(summary.uploadParts)),
            ]).text
        } else {
            text = """
                \(h.isIncremental ? "incremental" : "full") export (\(summary.form.rawValue)) to \(output)
                  change ID: \(h.targetID)\(h.baseID.map { "\n  since:     \($0)" } ?? "")
                  scanned:   \(ExportExit.rate(summary.scannedBytes, summary.seconds))
                  data:      \(Output.size(summary.dataBytes)), zeros: \(Output.size(summary.zeroBytes))
                  written:   \(Output.size(summary.writtenBytes))\(summary.form == .stream && summary.dataBytes > 0 ? " (\(Int((summary.ratio * 1000).rounded()) / 10)% of the data)" : "")\(ExportExit.uploadLine(summary.uploadParts, label: "upload:    "))
                """
        }
        if output == "-" { Output.message(text) } else { Output.data(text) }
    }
}
