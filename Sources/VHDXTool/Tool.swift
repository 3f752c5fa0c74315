import ArgumentParser

@main
struct Tool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vhdx",
        abstract: "Create, inspect, check and convert VHDX virtual disks.",
        discussion: """
            Exit codes: 0 success; 1 error (message on stderr). `check`: 0 clean, 1 the check \
            could not run, 2 corruption found, 3 only leaked space.
            """,
        subcommands: [CreateCommand.self, WriteCommand.self, ResizeCommand.self, CompactCommand.self, InfoCommand.self, MapCommand.self, CheckCommand.self, ConvertCommand.self, CompareCommand.self]
    )
}
