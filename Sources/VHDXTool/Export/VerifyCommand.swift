import ArgumentParser
import VHDXExport

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that an image is exactly what a full export and its incrementals describe.",
        discussion: """
            Every byte of IMAGE (any VHDX, chain or raw image) is compared with the last export that \
            wrote it; the exports' checksums and digests are checked on the way. EXPORTS: FULL \
            [INCREMENTAL…] streams in order (the full one may be -), or an exported chain's top.

            Exit codes: 0 identical; 1 different (the first differing offset on stdout); 2 an input \
            is damaged, or the check could not run; 3 the exports do not follow each other.
            """
    )

    @Argument(help: "The image to check.") var image: String
    @Argument(help: "FULL [INCREMENTAL…] (files or s3://BUCKET/KEY objects), or CHAIN_TOP.avhdx.") var exports: [String]
    @Flag(name: [.short, .long], help: "Progress on stderr even when it is not a terminal.") var progress = false
    @Flag(help: "A JSON result on stdout.") var json = false
    @OptionGroup var objectStore: ObjectStoreOptions

    func validate() throws {
        if exports.isEmpty { throw ValidationError("give the exports to verify against") }
    }

    func run() throws {
        objectStore.apply(to: [image] + exports)
        let r: VerifyResult
        do {
            r = try Verifier.verify(image, against: exports, progress: ProgressReporter(label: "verify", requested: progress).update)
        } catch {
            let code = ExportExit.code(for: error)
            Output.fail(error, code: code == ExportExit.refused ? code : ExportExit.damaged)
        }
        if json {
            Output.data(JSON.object([
                ("identical", .bool(r.identical)), ("first-difference", r.firstDifference.map { .int($0) } ?? .null),
                ("change-id", .string(r.holds.targetID.description)), ("compared-bytes", .int(r.comparedBytes)),
                ("seconds", .double((r.seconds * 1000).rounded() / 1000)),
            ]).text)
        } else if let d = r.firstDifference {
            Output.data("\(image) differs from the disk at \(r.holds.targetID): first difference at offset \(d)")
        } else {
            Output.data("\(image) is exactly the disk at \(r.holds.targetID) (\(ExportExit.rate(r.comparedBytes, r.seconds)) compared)")
        }
        if !r.identical { throw ExitCode(ExportExit.differs) }
    }
}
