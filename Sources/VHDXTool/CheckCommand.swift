import ArgumentParser
import VHDX
import VHDXChangeTracking

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check an image's consistency and report every problem found.",
        discussion: """
            Exit codes: 0 clean; 1 the check could not run; 2 corruption found; 3 only leaked \
            (unreferenced) space. With --repair the code reflects the image after repair. --chain: a \
            parent that cannot be found is exit 1; one whose DataWriteGuid matches neither linkage is \
            corruption (exit 2); --repair applies to FILE only.
            """
    )

    @Argument(help: "The VHDX or AVHDX file.") var file: String
    @Flag(help: "JSON on stdout.") var json = false
    @Flag(help: "Replay a pending log in place and restore a damaged header or region-table copy from the good one.")
    var repair = false
    @Flag(help: "Also check every parent of a differencing image and each link of the chain.") var chain = false
    @OptionGroup var parents: ParentArguments

    func run() throws {
        let target: ImageTarget
        do { target = try ImageTarget.resolve(self.file, writable: false, parents: parents) } catch { fail(error) }
        defer { target.hold() }
        let file = target.path
        if target.set != nil && repair { Output.fail(ValidationError("--repair does not apply to a VHD Set: check it, then repair a backing file by its own path"), code: 64) }
        let chain = self.chain || target.set != nil
        var repaired: [String] = []
        var notRepaired: [String] = []
        let report: CheckReport
        do {
            if repair {
                let outcome = try Repairer.repair(path: file)
                repaired = outcome.repaired
                notRepaired = outcome.notRepaired
            }
            var r = chain ? try Checker.checkChain(path: file, parents: parents.options) : try Checker.check(path: file)
            // The tracking region is ours, so the engine's checker skips it; check it here.
            if r.complete, let tracker = try ChangeTracker.attach(to: try VHDXFile.openFile(path: file)) {
                r.findings += try tracker.checkFindings()
            }
            if let set = target.set { r.findings += try set.check().map(Finding.init(set:)) }
            // An export stream fails the signature like any non-VHDX file (exit 2, README); the
            // finding says what it is instead of quoting its magic.
            ExportStreamArgument.explain(&r.findings, file: file)
            report = r
        } catch {
            fail(error)
        }
        if json {
            let value = JSON.object([
                ("filename", .string(file)),
                ("format", .string("vhdx")),
                ("result", .string(CheckCommand.results[Int(report.exitCode)])),
                ("complete", .bool(report.complete)),
                ("corruptions", .int(UInt64(report.corruptions))),
                ("leaks", .int(UInt64(report.leaks))),
                ("leaked-bytes", .int(report.leakedBytes)),
                ("log-replayed-in-memory", .bool(report.logReplay != nil)),
                ("repaired", .array(repaired.map { .string($0) })),
                ("not-repaired", .array(notRepaired.map { .string($0) })),
                ("findings", .array(report.findings.map { f in
                    .object([("kind", .string(f.kind.rawValue)), ("structure", .string(f.structure)),
                             ("file-offset", f.fileOffset.map { .int($0) } ?? .null),
                             ("message", .string(f.message)), ("repairable", .bool(f.repairable))])
                })),
                ("findings-suppressed", .int(UInt64(report.suppressed))),
            ])
            Output.data(value.text)
        } else {
            for r in repaired { Output.data("repaired: \(r)") }
            for r in notRepaired { Output.data("not repaired: \(r)") }
            for f in report.findings { Output.data(f.description) }
            if report.suppressed > 0 { Output.data("(\(report.suppressed) more findings not shown)") }
            switch report.exitCode {
            case 0: Output.data("No errors were found on the image.")
            case 3: Output.data("\(report.leaks) leaked areas (\(report.leakedBytes) bytes) were found on the image; they waste space but do not affect data.")
            default:
                Output.data("\(report.corruptions) \(report.corruptions == 1 ? "error was" : "errors were") found on the image."
                            + (report.findings.contains { $0.repairable && $0.kind == .corruption } ? " Some can be fixed with: vhdx check --repair \(file)" : ""))
            }
        }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }

    /// `result` in JSON, by exit code (README "Checking images in CI").
    static let results = ["clean", "error", "corrupt", "leaks"]

    /// The check could not run (exit 1). With --json the report is still one JSON object, with
    /// `result` "error" and the reason in `error`, so a CI job that collects reports gets one for
    /// every image; the message goes to stderr as well.
    func fail(_ error: Error) -> Never {
        if json {
            let message = (error as? VHDXError)?.detailedDescription ?? "\(error)"
            Output.data(JSON.object([
                ("filename", .string(file)),
                ("format", .string("vhdx")),
                ("result", .string(CheckCommand.results[1])),
                ("error", .string(message)),
                ("complete", .bool(false)),
                ("corruptions", .int(0)),
                ("leaks", .int(0)),
                ("leaked-bytes", .int(0)),
                ("log-replayed-in-memory", .bool(false)),
                ("repaired", .array([])),
                ("not-repaired", .array([])),
                ("findings", .array([])),
                ("findings-suppressed", .int(0)),
            ]).text)
        }
        Output.fail(error, code: 1)
    }
}
