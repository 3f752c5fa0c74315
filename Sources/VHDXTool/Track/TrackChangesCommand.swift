import ArgumentParser
import VHDX
import VHDXChangeTracking

struct TrackChangesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "changes",
        abstract: "Print the byte ranges changed since a change ID (never fewer than changed).",
        discussion: """
            Text: one `offset length` line per range. JSON: {"ranges": [{"offset", "length"}], \
            "processed", "changed-bytes", "exact"} (exact is false when a set was coarsened to fit its slot \
            or an unclean stop was folded in: the ranges then cover more than was written). With --max-ranges, `processed` says how far the answer \
            got: ask again with --offset increased by it. Exit codes: 0 answered; 4 this ID cannot \
            be answered (reset, expired, unknown, another disk's, not enabled: the reason on \
            stderr), so take a full backup; 1 other errors; 64 bad usage, also text that is not a \
            change ID at all (empty, whitespace, a newline, uppercase, wrong field count).
            """
    )

    @Argument(help: "The VHDX or AVHDX file.") var file: String
    @Option(help: "The change ID the answer starts from.") var since: String
    @Option(help: "Stop at this later change ID instead of now.") var until: String?
    @Option(help: "Only ranges at or after this virtual offset.") var offset: ByteCount?
    @Option(help: "Only ranges within this many bytes from --offset.") var length: ByteCount?
    @Option(help: "At most this many ranges (page with --offset + processed).") var maxRanges: Int?
    @Flag(help: "JSON on stdout.") var json = false
    @OptionGroup var parents: ParentArguments

    func validate() throws {
        if let maxRanges, maxRanges < 1 { throw ValidationError("--max-ranges must be at least 1") }
        // Malformed IDs are usage errors (64), not "unknown ID" (4: take a full backup).
        _ = try ChangeIDArgument.parse(since, option: "--since")
        if let until { _ = try ChangeIDArgument.parse(until, option: "--until") }
    }

    func run() throws {
        let target = ImageTarget.resolveOrExit(self.file, writable: false, parents: parents)
        defer { target.hold() }
        let file = target.path
        let answer: ChangeAnswer
        do {
            let since = try ChangeIDArgument.parse(since, option: "--since")  // checked in validate()
            let until = try self.until.map { (text) throws(ValidationError) in try ChangeIDArgument.parse(text, option: "--until") }
            if let set = target.set {
                // Through the set: IDs of files a delete merged away are answered by their alias.
                answer = try set.changes(since: since, until: until, offset: offset?.bytes ?? 0, length: length?.bytes, maxRanges: maxRanges ?? .max)
            } else {
                let image = try TrackedOpen.image(file, writable: false, parents: parents)
                // Through the chain: an ID sealed on an ancestor is answered there.
                answer = try ChangeTracking.changes(in: image, since: since, until: until, offset: offset?.bytes ?? 0, length: length?.bytes,
                                                    maxRanges: maxRanges ?? .max)
            }
        } catch let e as ChangeTrackingError where e.reason != .engine {
            Output.fail(e, code: 4)
        } catch { Output.fail(error) }
        if json {
            Output.data(JSON.object([
                ("ranges", .array(answer.ranges.map { .object([("offset", .int($0.offset)), ("length", .int($0.length))]) })),
                ("processed", .int(answer.processed)),
                ("changed-bytes", .int(answer.changedBytes)),
                ("exact", .bool(answer.exact)),
            ]).text)
        } else {
            Output.data(answer.ranges.map { "\($0.offset) \($0.length)" }.joined(separator: "\n"), skipEmpty: true)
        }
    }
}
