import ArgumentParser
import VHDX
import VHDXSets

struct SetApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Make the set's content a snapshot's again (a new child of its file becomes the active leaf).",
        discussion: """
            The old leaf is kept as a snapshot of its own (type kept-leaf, its change ID sealed): a \
            branch you can apply later. With --discard it is deleted instead.
            """
    )

    @Argument(help: "The set file (.vhds).") var set: String
    @Argument(help: "The snapshot id (or a unique prefix of it).") var snapshot: String
    @Flag(help: "Delete the current leaf instead of keeping it as a branch.") var discard = false

    func run() throws {
        do {
            let s = try VHDSet.open(path: set, writable: true)
            let target = try s.findSnapshot(snapshot)
            let kept = try s.apply(target.id, discard: discard)
            Output.message("applied {\(target.id)}: new active leaf \(printable(s.record.leafPath))"
                           + (kept.map { "; the old leaf is kept as snapshot {\($0.id)}" } ?? "; the old leaf was deleted"))
        } catch { Output.fail(error) }
    }
}
