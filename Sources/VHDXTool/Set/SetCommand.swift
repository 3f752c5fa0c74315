import ArgumentParser

/// `vhdx set …`: VHD Sets, checkpoints and reference points.
struct SetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "VHD Sets (.vhds): a disk with checkpoints, reference points and branches.",
        discussion: """
            A set file (our own documented layout, Sources/VHDXSets/SET-FORMAT.md) names a chain of \
            ordinary VHDX backing files: the active leaf, which reads and writes go to, and the frozen \
            files of its checkpoints. Every engine command that takes an image (info, map, check, \
            convert, compare, write, track …) accepts SET.vhds and works on the active leaf's chain. \
            Each checkpoint seals a change ID; a deleted checkpoint can keep it (--keep-reference) so \
            `track changes SET.vhds --since ID` still answers. Sets written by Hyper-V use an \
            undocumented layout and are refused (their .avhdx chain opens directly).
            """,
        subcommands: [SetCreateCommand.self, SetListCommand.self, SetCheckpointCommand.self, SetApplyCommand.self,
                      SetDeleteCommand.self, SetOptimizeCommand.self, SetRelinkCommand.self]
    )
}
