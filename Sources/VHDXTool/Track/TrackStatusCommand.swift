import ArgumentParser
import VHDX
import VHDXChangeTracking
import VHDXFormat

struct TrackStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show whether tracking is on, its granule, retained change IDs, the latest one, and the last reset."
    )

    @Argument(help: "The VHDX or AVHDX file.") var file: String
    @Flag(help: "JSON on stdout.") var json = false
    @OptionGroup var parents: ParentArguments

    func run() throws {
        let target = ImageTarget.resolveOrExit(self.file, writable: false, parents: parents)
        defer { target.hold() }
        let file = target.path
        let status: TrackingStatus?
        do {
            let image = try TrackedOpen.image(file, writable: false, parents: parents)
            status = try ChangeTracker.attach(to: image)?.status
        } catch { Output.fail(error) }
        if json {
            Output.data(TrackStatusCommand.json(status).text)
            return
        }
        guard let s = status else {
            Output.data("change tracking: not enabled")
            return
        }
        for line in TrackStatusCommand.lines(s) { Output.data(line) }
    }

    static func lines(_ s: TrackingStatus) -> [String] {
        var out = ["change tracking: enabled",
                   "granule: \(Output.size(s.granule))",
                   "history: \(TrackingArguments.history(s.historyLimit)), region \(Output.humanSize(s.regionBytes))",
                   "latest change ID: \(s.latestID?.description ?? "none sealed yet")",
                   "changed since latest: \(s.changedSinceLatest ? "yes" : "no")",
                   "retained change IDs: \(s.retainedIDs.count)"]
        if let r = s.lastReset { out.append("last reset: \(r.reason) (at \(UTCTime.iso8601(seconds: r.time)))") }
        out += s.notes.map { "note: \($0)" }
        return out
    }

    static func json(_ status: TrackingStatus?) -> JSON {
        guard let s = status else { return .object([("enabled", .bool(false))]) }
        return .object([
            ("enabled", .bool(true)),
            ("granule", .int(s.granule)),
            // Epochs kept; they answer up to one more ID than that (the latest's epoch is open).
            ("history", .int(UInt64(s.historyLimit))),
            ("max-retained-ids", .int(UInt64(s.historyLimit) + 1)),
            ("region-bytes", .int(s.regionBytes)),
            ("generation", .int(UInt64(s.generation))),
            ("latest-id", s.latestID.map { .string($0.description) } ?? .null),
            ("changed-since-latest", .bool(s.changedSinceLatest)),
            ("retained-ids", .array(s.retainedIDs.map { .string($0.description) })),
            ("last-reset", s.lastReset.map { .object([("time", .int($0.time)), ("reason", .string($0.reason))]) } ?? .null),
            ("notes", .array(s.notes.map { .string($0) })),
        ])
    }
}
