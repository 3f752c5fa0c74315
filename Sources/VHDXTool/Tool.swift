import ArgumentParser
import VHDX

@main
struct Tool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vhdx",
        abstract: "Create, write, inspect, check, convert, resize, compact, compare, merge and reparent VHDX virtual disks and chains.",
        discussion: """
            Exit codes: 0 success; 1 error (message on stderr); 64 bad usage. `check`: 0 clean, 1 the check \
            could not run, 2 corruption found, 3 only leaked space. `compare`: 0 identical, 1 different, 2 error.

            Sizes: whole bytes, optionally with a binary suffix K, M, G, T (or KiB…TiB; 1K = 1024), or \
            0x hex. A fraction is accepted when it comes to whole bytes (1.5G); decimal units (MB) are \
            refused: use M.
            """,
        version: SwiftVHDX.version,
        subcommands: [CreateCommand.self, WriteCommand.self, ResizeCommand.self, CompactCommand.self, InfoCommand.self, MapCommand.self, CheckCommand.self, ConvertCommand.self, CompareCommand.self, MergeCommand.self, ReparentCommand.self, TrackCommand.self, SetCommand.self, ExportCommand.self, RestoreCommand.self, ApplyCommand.self, VerifyCommand.self]
    )

    /// No subcommand is a usage error like any other (the parser's default prints help to stdout
    /// and exits 0, which lets a script's typo pass): usage on stderr, exit 64 (EX_USAGE).
    func run() throws {
        Output.raw(Tool.helpMessage() + "\n")
        throw ExitCode(64)
    }
}
