import ArgumentParser
import VHDX
import VHDXSets
import VHDXFormat

struct SetListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "The set, its snapshots and its active leaf (Get-VHDSet, Get-VHDSnapshot).",
        discussion: "Snapshots deleted while branches still read through their file (retained) are listed with --all."
    )

    @Argument(help: "The set file (.vhds).") var set: String
    @Flag(help: "JSON on stdout.") var json = false
    @Flag(help: "Also list retained (deleted, file kept for branches) snapshots.") var all = false

    func run() throws {
        let s: VHDSet
        do { s = try VHDSet.open(path: set) } catch { Output.fail(error) }
        let problems: [GUID: VHDXError]
        do { problems = try s.problems() } catch { Output.fail(error) }
        let r = s.record
        let ancestry = r.leafAncestry()
        let shown = r.snapshots.filter { all || !$0.isRetained }
        if json {
            let snaps = shown.map { e -> JSON in
                JSON.object([
                    ("id", .string(e.id.description)), ("type", .string(SetText.kind(e))),
                    ("created", .string(SetText.time(e.created))), ("created-ms", .int(e.created)),
                    ("path", e.hasFile ? .string(e.path) : .null), ("parent", e.parent.isZero ? .null : .string(e.parent.description)),
                    ("reference-only", .bool(e.isReferenceOnly)), ("retained", .bool(e.isRetained)), ("valid", .bool(e.isValid)),
                    ("change-id", e.changeID.map { .string($0.description) } ?? .null),
                    ("frozen-data-write-guid", e.hasFile ? .string(e.frozenDataWriteGUID.description) : .null),
                    ("ancestor-of-leaf", .bool(ancestry.contains(e.id))),
                    ("problem", problems[e.id].map { .string($0.message) } ?? .null),
                ])
            }
            Output.data(JSON.object([
                ("set-id", .string(r.setID.description)), ("virtual-disk-id", .string(r.virtualDiskID.description)),
                ("created", .string(SetText.time(r.created))), ("default-folder", .string(r.defaultFolder)),
                ("active-leaf", .object([("path", .string(r.leafPath)), ("parent", r.leafParent.isZero ? .null : .string(r.leafParent.description))])),
                ("snapshots", .array(snaps)),
                ("pending", r.pending.map { .string($0.kind.description) } ?? .null),
                ("aliases", .int(UInt64(r.aliases.count))),
            ]).text)
            return
        }
        var lines = ["set {\(r.setID)} (disk {\(r.virtualDiskID)}), created \(SetText.time(r.created))",
                     "active leaf: \(printable(r.leafPath))" + (r.leafParent.isZero ? "" : " (child of {\(r.leafParent)})")]
        if let p = r.pending { lines.append("pending: an interrupted \(p.kind) (the next writing command completes it)") }
        lines.append(shown.isEmpty ? "no snapshots" : "snapshots (oldest first):")
        for e in shown {
            var l = "  {\(e.id)} \(SetText.kind(e)) \(SetText.time(e.created))"
            l += e.hasFile ? "  \(printable(e.path))" : "  (reference point, no file)"
            if !e.parent.isZero { l += "  parent {\(e.parent)}" }
            if ancestry.contains(e.id) { l += "  [leaf's ancestor]" }
            lines.append(l)
            if let c = e.changeID { lines.append("      change ID \(c)") }
            if let p = problems[e.id] { lines.append("      PROBLEM: \(printable(p.message))") }
        }
        Output.data(lines.joined(separator: "\n"))
    }
}

/// How set values read in text.
enum SetText {
    static func kind(_ e: SnapshotEntry) -> String {
        if e.isReferenceOnly { return "reference" }
        if e.isRetained { return "retained" }
        return e.kind == .checkpoint ? "checkpoint" : "kept-leaf"
    }

    /// Milliseconds since 1970 as UTC ISO 8601.
    static func time(_ ms: UInt64) -> String { UTCTime.iso8601(seconds: ms / 1000) }
}
