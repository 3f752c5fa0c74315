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
            follow each other (another disk, out of order, a base missing); 1 other errors.
            """
    )

    @Argument(help: "The image to create (.vhdx, or raw).") var output: String
    @Argument(help: "FULL [INCREMENTAL…] streams, or CHAIN_TOP.avhdx.") var inputs: [String]
    @Flag(help: "VHDX output: allocate every block (a fixed disk).") var fixed = false
    @Flag(name: [.short, .long], help: "Progress on stderr even when it is not a terminal.") var progress = false
    @Flag(help: "Replace OUT if it exists.") var force = false
    @Flag(help: "A JSON summary on stdout.") var json = false

    func validate() throws {
        if inputs.isEmpty { throw ValidationError("give the full export (and its incrementals), or an exported chain's top") }
    }

    func run() throws {
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

            Exit codes: 0 applied; 2 the incremental is damaged; 3 refused: wrong base, already \
            applied, out of order, another disk's, another apply interrupted (IMAGE untouched); 1 other errors.
            """
    )

    @Argument(help: "The restored image (.vhdx).") var image: String
    @Argument(help: "The incremental stream, or - for stdin.") var incremental: String
    @Flag(name: [.short, .long], help: "Progress on stderr even when it is not a terminal.") var progress = false
    @Flag(help: "A JSON summary on stdout.") var json = false

    func run() throws {
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
    @Argument(help: "FULL [INCREMENTAL…], or CHAIN_TOP.avhdx.") var exports: [String]
    @Flag(name: [.short, .long], help: "Progress on stderr even when it is not a terminal.") var progress = false
    @Flag(help: "A JSON result on stdout.") var json = false

    func validate() throws {
        if exports.isEmpty { throw ValidationError("give the exports to verify against") }
    }

    func run() throws {
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
