import ArgumentParser
import VHDX
import VHDXSets

struct SetCheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Freeze the active leaf as a snapshot, seal its change ID, continue in a new child (prints the snapshot id).",
        discussion: "The snapshot id goes alone to stdout (JSON with --json: id, change ID, file, new leaf)."
    )

    @Argument(help: "The set file (.vhds).") var set: String
    @Flag(help: "JSON on stdout.") var json = false

    func run() throws {
        let e: SnapshotEntry
        let leaf: String
        do {
            let s = try VHDSet.open(path: set, writable: true)
            e = try s.checkpoint()
            leaf = s.record.leafPath
        } catch { Output.fail(error) }
        Output.data(json ? JSON.object([("id", .string(e.id.description)), ("change-id", e.changeID.map { .string($0.description) } ?? .null),
                                        ("path", .string(e.path)), ("active-leaf", .string(leaf))]).text : e.id.description)
    }
}
