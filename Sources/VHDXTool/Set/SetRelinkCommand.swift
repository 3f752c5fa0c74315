import ArgumentParser
import VHDX
import VHDXSets

struct SetRelinkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relink",
        abstract: "Point the set at a backing file that was moved (a snapshot's, or the leaf's with `leaf`).",
        discussion: """
            The file must lie in the set's folder tree and, for a snapshot, still have the \
            DataWriteGuid it was frozen with (--accept-modified takes a modified file as it is). \
            Files made from it are pointed at the new path too.
            """
    )

    @Argument(help: "The set file (.vhds).") var set: String
    @Argument(help: "The snapshot id (or a unique prefix), or `leaf`.") var snapshot: String
    @Argument(help: "Where the file is now.") var file: String
    @Flag(help: "Accept a snapshot file whose content changed since it was frozen.") var acceptModified = false

    func run() throws {
        do {
            let s = try VHDSet.open(path: set, writable: true)
            let id = snapshot == "leaf" ? nil : try s.findSnapshot(snapshot).id
            try s.relink(snapshot: id, to: file, acceptModified: acceptModified)
            Output.message("relinked \(id.map { "{\($0)}" } ?? "the active leaf") to \(printable(file))")
        } catch { Output.fail(error) }
    }
}
