import ArgumentParser
import VHDX
import VHDXSets

struct SetDeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a snapshot, merging its data where it must go (Remove-VHDSnapshot).",
        discussion: """
            With one dependant (the snapshot or leaf made from it), the dependant's file is merged into \
            the snapshot's, which takes its place; with none, the file is deleted; with several \
            (branches), the file is kept until `set optimize` can fold it. --keep-reference keeps a \
            data-less entry whose change ID still answers `track changes` (-PersistReferencePoint). \
            Interrupted, the next command that writes to the set completes it.
            """
    )

    @Argument(help: "The set file (.vhds).") var set: String
    @Argument(help: "The snapshot id (or a unique prefix of it).") var snapshot: String
    @Flag(help: "Keep a reference point: the change ID stays answerable.") var keepReference = false

    func run() throws {
        do {
            let s = try VHDSet.open(path: set, writable: true)
            let target = try s.findSnapshot(snapshot)
            let r = try s.delete(target.id, keepReference: keepReference)
            let what: String
            switch r.outcome {
            case .merged(let d, let bytes): what = "merged \(printable(d)) into its file (\(Output.humanSize(bytes)))"
            case .removed: what = "its file was deleted"
            case .retained(let n): what = "its file stays: \(n) branches read through it (`set optimize` folds it when one is left)"
            case .referenceOnly: what = "reference point" + (r.keptReference ? " kept" : " removed")
            }
            Output.message("deleted {\(target.id)}: \(what)" + (r.keptReference ? "; its change ID still answers" : ""))
        } catch { Output.fail(error) }
    }
}
