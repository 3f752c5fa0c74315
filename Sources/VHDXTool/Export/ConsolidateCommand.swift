import ArgumentParser
import VHDXExport

struct ConsolidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consolidate",
        abstract: "Fold a full export and its incrementals into one new full export stream.",
        discussion: """
            NEW is a full stream equal to restoring FULL INC1 … INCn, made from the streams alone \
            (no source disk, no image): their records are merged as they are read, front to back, \
            in bounded memory. It holds INCn's change ID and size and stands for INCn: the next \
            incremental made with `--base INCn` applies on NEW (or on an image restored from it); \
            an incremental on any other base is refused. Every record of every input is checked as \
            `vhdx restore` checks it, also those NEW does not keep. NEW is written to a temporary \
            file and renamed (- for stdout); an existing NEW is replaced only with --force, never \
            one of the inputs.

            Exit codes: 0 consolidated; 2 an input is damaged or not an export; 3 the inputs do \
            not follow each other (another disk, out of order, a base missing, a full export after \
            another); 1 other errors (I/O); 64 bad usage. Nothing is written on failure.
            """
    )

    @Argument(help: "The new full stream, or - for stdout.") var output: String
    @Argument(help: "FULL INC1 … INCn: the full export (or an earlier consolidation) and its incrementals, in order.") var inputs: [String]
    @Flag(name: [.short, .long], help: "Progress on stderr even when it is not a terminal.") var progress = false
    @Flag(help: "Replace NEW if it exists.") var force = false
    @Flag(help: "A JSON summary (on stderr when NEW is -).") var json = false
    @OptionGroup var objectStore: ObjectStoreOptions

    func validate() throws {
        if inputs.count < 2 { throw ValidationError("give the full export and at least one incremental to fold into it") }
    }

    func run() throws {
        objectStore.apply(to: [output] + inputs)
        let s: ConsolidateSummary
        do {
            s = try Consolidator.consolidate(inputs, to: output, overwrite: force,
                                             progress: ProgressReporter(label: "consolidate", requested: progress).update)
        } catch { ExportExit.fail(error) }
        let h = s.header
        let text: String
        if json {
            text = JSON.object([
                ("output", .string(output)), ("inputs", .int(UInt64(s.inputs))),
                ("stream-id", .string(h.streamID.description)), ("stands-for", .string(h.standsFor.description)),
                ("disk-id", .string(h.sourceDiskID.description)), ("target-id", .string(h.targetID.description)),
                ("virtual-size", .int(h.virtualSize)), ("data-bytes", .int(s.dataBytes)), ("zero-bytes", .int(s.zeroBytes)),
                ("copied-records", .int(s.copiedRecords)), ("built-records", .int(s.builtRecords)),
                ("written-bytes", .int(s.writtenBytes)), ("seconds", .double((s.seconds * 1000).rounded() / 1000)),
                ("upload", ExportExit.json(s.uploadParts)),
            ]).text
        } else {
            text = """
                consolidated \(s.inputs) exports into \(output): a full export of the disk at \(h.targetID)
                  stands for: {\(h.standsFor)} (incrementals made on it apply on this one)
                  data:       \(ExportExit.rate(s.dataBytes, s.seconds)), zeros: \(Output.size(s.zeroBytes))
                  records:    \(s.copiedRecords) copied as they were, \(s.builtRecords) rebuilt
                  written:    \(Output.size(s.writtenBytes))\(ExportExit.uploadLine(s.uploadParts, label: "upload:     "))
                """
        }
        if output == "-" { Output.message(text) } else { Output.data(text) }
    }
}

extension ConsolidateCommand: WritesOutput {
    var outputPath: String? { output == "-" ? nil : output }
    var setNameAdvice: String? { "a consolidation is an export stream, not a set: name NEW e.g. .vxs" }
}
