import ArgumentParser
import VHDX
import VHDXSets

struct SetOptimizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "optimize",
        abstract: "Fold retained files, drop invalid entries and dead reference points, compact the set file.",
        discussion: "A reference point is dead when the active leaf can no longer answer its change ID (expired, reset, another branch)."
    )

    @Argument(help: "The set file (.vhds).") var set: String

    func run() throws {
        do {
            let s = try VHDSet.open(path: set, writable: true)
            let r = try s.optimize()
            Output.message("optimized: \(r.folded.count) retained file(s) folded, \(r.droppedEntries.count) entr\(r.droppedEntries.count == 1 ? "y" : "ies") and \(r.droppedAliases) alias(es) dropped; set file \(Output.humanSize(r.bytesBefore)) → \(Output.humanSize(r.bytesAfter))")
        } catch { Output.fail(error) }
    }
}
