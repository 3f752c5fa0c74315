import ArgumentParser
import VHDX

struct ReparentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reparent",
        abstract: "Point a differencing image at a new parent path (Set-VHD -ParentPath).",
        discussion: """
            For a parent that was moved or renamed, or an ancestor a merge folded the old parent into. \
            NEW must carry the DataWriteGuid the child's locator records (parent_linkage, or \
            parent_linkage2 after a merge); --ignore-id-mismatch accepts any parent, at the user's \
            risk. The locator's linkage and paths are rewritten through the log; the child's content \
            and DataWriteGuid stay, so its own children still link to it. NEW is only read.
            """
    )

    @Argument(help: "The differencing image.") var child: String
    @Option(help: ArgumentHelp("The new parent.", valueName: "path")) var parent: String
    @Option(name: .customLong("search-dir"), help: ArgumentHelp("Where to look for the new parent's own ancestors by file name (repeatable).", valueName: "dir"))
    var searchDirs: [String] = []
    @Flag(help: "Accept a parent whose DataWriteGuid matches neither linkage.") var ignoreIdMismatch = false
    @Flag(help: "JSON on stdout.") var json = false

    func validate() throws {
        try SetName.refuse(child, as: "CHILD", in: "reparent", "`vhdx set relink SET SNAPSHOT|leaf FILE` points a set at a moved backing file")
        try SetName.refuse(parent, as: "--parent", in: "reparent", "a set is not a parent; name one of its backing files (`vhdx set list SET` shows them)")
    }

    func run() throws {
        do {
            // Checked on a read-only open first: a refused reparent leaves the file untouched.
            let options = ParentOptions(searchDirectories: searchDirs, ignoreIDMismatch: ignoreIdMismatch)
            let (planned, _) = try VHDXFile.openFile(path: child).planReparent(to: parent, options: options)
            // Through the engine's reparent, never the locator alone: a parent accepted with a
            // mismatch changes what every byte may read, which change tracking must be told.
            let image = try TrackedOpen.file(child, writable: true)
            let match = try image.reparent(to: parent, options: options)
            let locator = planned.entries
            try image.close()
            if json {
                Output.data(JSON.object([
                    ("child", .string(child)), ("parent", .string(parent)), ("matched", .string(match.rawValue)),
                    ("parent-locator", .object(locator.map { ($0.key, JSON.string($0.value)) })),
                ]).text)
            } else {
                Output.data(printable("\(child): parent is now \(parent) (matched by \(match.rawValue))"))
                for e in locator { Output.data(printable("  \(e.key): \(e.value)")) }
            }
        } catch { Output.fail(error) }
    }
}
