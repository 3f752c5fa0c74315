import ArgumentParser
import VHDXExport

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Build an image from a full export and its incrementals, or from an exported chain.",
        discussion: """
            Inputs: FULL [INCREMENTAL…] streams in order (the full one may be - for stdin), or the top \
            of an exported chain (full.vhdx ← inc1.avhdx ← …). OUT ending in .vhdx: a VHDX (dynamic \
            unless --fixed) that records which export it holds, so `vhdx apply` can put the next \
            incremental on it; any other name: a raw, sparse image. Every record's CRC-32C and every \
            block's SHA-256 are checked before its bytes are written. OUT is built as a temporary file \
            and renamed; nothing is left behind on failure.

            Exit codes: 0 restored; 2 an input is damaged or not an export; 3 the inputs do not \
            follow each other (another disk, out of order, a base missing, a full export after another); 1 other errors (I/O).
            """
    )

    @Argument(help: "The image to create (.vhdx, or raw).") var output: String
    @Argument(help: "FULL [INCREMENTAL…] streams (files or s3://BUCKET/KEY objects), or CHAIN_TOP.avhdx.") var inputs: [String]
    @Flag(help: "VHDX output: allocate every block (a fixed disk).") var fixed = false
    @Flag(name: [.short, .long], help: "Progress on stderr even when it is not a terminal.") var progress = false
    @Flag(help: "Replace OUT if it exists.") var force = false
    @Flag(help: "A JSON summary on stdout.") var json = false
    @OptionGroup var objectStore: ObjectStoreOptions

    func validate() throws {
        if inputs.isEmpty { throw ValidationError("give the full export (and its incrementals), or an exported chain's top") }
    }

    func run() throws {
        objectStore.apply(to: [output] + inputs)
        let s: RestoreSummary
        do {
            s = try Restorer.restore(to: output, from: inputs, fixed: fixed, overwrite: force,
                                     progress: ProgressReporter(label: "restore", requested: progress).update)
        } catch { ExportExit.fail(error) }
        if json {
            Output.data(JSON.object([
                ("output", .string(output)), ("inputs", .int(UInt64(s.inputs))),
                ("disk-id", .string(s.holds.sourceDiskID.description)), ("change-id", .string(s.holds.targetID.description)),
                ("virtual-size", .int(s.holds.virtualSize)), ("data-bytes", .int(s.dataBytes)), ("zero-bytes", .int(s.zeroBytes)),
                ("written-bytes", .int(s.writtenBytes)), ("seconds", .double((s.seconds * 1000).rounded() / 1000)),
            ]).text)
        } else {
            Output.data("""
                restored \(output) from \(s.inputs) export\(s.inputs == 1 ? "" : "s"): the disk at \(s.holds.targetID)
                  data:    \(ExportExit.rate(s.dataBytes, s.seconds)) (every block's SHA-256 checked)
                  written: \(Output.size(s.writtenBytes))
                """)
        }
    }
}
