import ArgumentParser
import VHDXExport

struct ApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Put one incremental export on an image restored by `vhdx restore`.",
        discussion: """
            IMAGE must hold exactly the incremental's base: the same disk, the change ID the \
            incremental starts from, and unwritten since it was restored or last applied (its \
            DataWriteGuid). The whole incremental is read and checked before anything is written. \
            The image then records "applying", the extents are written, and it records the new \
            change ID: an interrupted apply is completed by running it again (until then the image \
            is refused as a base).

            Exit codes: 0 applied; 2 the incremental is damaged or not an export, or IMAGE is not a \
            VHDX restored or exported by vhdx (a raw image); 3 refused: wrong base, already applied, out \
            of order, another disk's, another apply interrupted (IMAGE untouched); 1 other errors (I/O).
            """
    )

    @Argument(help: "The restored image (.vhdx).") var image: String
    @Argument(help: "The incremental stream: a file, an s3://BUCKET/KEY object, or - for stdin.") var incremental: String
    @Flag(name: [.short, .long], help: "Progress on stderr even when it is not a terminal.") var progress = false
    @Flag(help: "A JSON summary on stdout.") var json = false
    @OptionGroup var objectStore: ObjectStoreOptions

    func run() throws {
        objectStore.apply(to: [image, incremental])
        let s: ApplySummary
        do {
            s = try Applier.apply(incremental, to: image, progress: ProgressReporter(label: "apply", requested: progress).update)
        } catch { ExportExit.fail(error) }
        if json {
            Output.data(JSON.object([
                ("image", .string(image)), ("change-id", .string(s.holds.targetID.description)), ("resumed", .bool(s.resumed)),
                ("data-bytes", .int(s.dataBytes)), ("zero-bytes", .int(s.zeroBytes)), ("seconds", .double((s.seconds * 1000).rounded() / 1000)),
            ]).text)
        } else {
            Output.data("""
                applied to \(image)\(s.resumed ? " (completing an interrupted apply)" : ""): the disk at \(s.holds.targetID)
                  data: \(ExportExit.rate(s.dataBytes, s.seconds)), zeros: \(Output.size(s.zeroBytes))
                """)
        }
    }
}
