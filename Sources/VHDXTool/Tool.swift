import ArgumentParser
import VHDX

@main
struct Tool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vhdx",
        abstract: "Create, write, inspect, check, convert, resize, compact, compare, merge and reparent VHDX virtual disks and chains; track changes, keep VHD Sets, export and restore backups, serve disks over NBD.",
        discussion: """
            Exit codes: 0 success; 1 error (message on stderr); 64 bad usage (also a refused size, \
            output format or change ID). Besides: `check`: 1 the check could not run, 2 corruption \
            found, 3 only leaked space. `compare`: 1 different, 2 an input could not be opened or \
            read. `verify`: 1 different, 2 an input is damaged or the check could not run, 3 the \
            exports do not follow each other. `track changes`, `track seal`: 4 the change ID cannot \
            be answered (not enabled, unknown, expired, another disk's, reset). `export`: 2 the base \
            is damaged or not an export, 3 the base is another disk's or was written since, 4 \
            tracking cannot answer from the base (take a full export). `restore`, `apply`, \
            `consolidate`: 2 an input is damaged or not an export, 3 refused (the exports do not follow each other, \
            wrong base, already applied, another disk's, another apply interrupted).

            Sizes: whole bytes, optionally with a binary suffix K, M, G, T (or KiB…TiB; 1K = 1024), or \
            0x hex. A fraction is accepted when it comes to whole bytes (1.5G); decimal units (MB) are \
            refused: use M.
            """,
        version: SwiftVHDX.version,
        subcommands: [CreateCommand.self, WriteCommand.self, ResizeCommand.self, CompactCommand.self, InfoCommand.self, MapCommand.self, CheckCommand.self, ConvertCommand.self, CompareCommand.self, MergeCommand.self, ReparentCommand.self, TrackCommand.self, SetCommand.self, ExportCommand.self, RestoreCommand.self, ApplyCommand.self, VerifyCommand.self, ConsolidateCommand.self, BackupsCommand.self, ServeCommand.self]
    )

    /// `ParsableCommand.main` with steps between parsing and running that hold for every
    /// command alike: the options the command accepts are noted (hints name no other option),
    /// its output is checked (`OutputRule`: no `.vhds` name unless it makes a set, never over a
    /// device or FIFO), and so are the change IDs it takes (`ChangeIDArgument`: text that is not
    /// a change ID is a usage error, never "unknown ID").
    static func main() {
        do {
            var command = try parseAsRoot()
            RunningCommand.options = HintOptions(of: command)
            OutputRule.check(command)
            ChangeIDArgument.check(command)
            try command.run()
        } catch {
            exit(withError: error)
        }
    }

    /// No subcommand is a usage error like any other (the parser's default prints help to stdout
    /// and exits 0, which lets a script's typo pass): usage on stderr, exit 64 (EX_USAGE).
    func run() throws {
        Output.raw(Tool.helpMessage() + "\n")
        throw ExitCode(64)
    }
}
