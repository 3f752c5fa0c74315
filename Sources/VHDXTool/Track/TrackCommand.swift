import ArgumentParser

/// `vhdx track …`: resilient change tracking kept inside the disk.
struct TrackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "track",
        abstract: "Resilient change tracking: change IDs and the byte ranges changed since one.",
        discussion: """
            State lives inside the VHDX (a region of its own, ignored by other readers), so copying \
            or moving the file keeps every change ID valid. Writes through `vhdx` are tracked; a \
            write by any other tool is detected and answered with "tracking reset". \
            `track changes` exits 4 when the ID can no longer be answered (reset, expired, unknown, \
            another disk's, tracking not enabled): take a full backup then.
            """,
        subcommands: [TrackEnableCommand.self, TrackDisableCommand.self, TrackStatusCommand.self,
                      TrackSealCommand.self, TrackChangesCommand.self]
    )
}
