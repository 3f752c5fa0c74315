import ArgumentParser
import VHDX

/// How a command finds the parents of differencing images it opens.
struct ParentArguments: ParsableArguments {
    @Option(help: ArgumentHelp("Use PATH as the parent of a differencing image instead of the paths in its parent locator.", valueName: "path"))
    var parent: String?
    @Option(name: .customLong("search-dir"), help: ArgumentHelp("Also look for parents by file name in DIR (repeatable).", valueName: "dir"))
    var searchDirs: [String] = []
    @Flag(help: "Accept a parent whose DataWriteGuid does not match the child's parent_linkage.")
    var ignoreIdMismatch = false

    var options: ParentOptions {
        ParentOptions(parentPath: parent, searchDirectories: searchDirs, ignoreIDMismatch: ignoreIdMismatch)
    }
}
