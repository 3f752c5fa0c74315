import ArgumentParser
import VHDX
import VHDXSets

struct SetCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a VHD Set: with SIZE, an empty disk; with --from, around an existing VHDX.",
        discussion: """
            With SIZE, the first backing file is NAME_<guid>.avhdx beside SET (a dynamic VHDX unless \
            --fixed; made first, the set file last, each atomically). With --from DISK, DISK becomes \
            the set's first backing file where it is, neither moved nor copied: it must lie in SET's \
            folder or below it, and must not be a differencing disk. Change tracking is enabled on the \
            backing file (every checkpoint seals a change ID).
            """
    )

    @Argument(help: "The new set file (.vhds).") var set: String
    @Argument(help: "Virtual size (K/M/G/T suffixes).", transform: ByteCount.parser) var size: ByteCount?
    @Option(help: ArgumentHelp("Make this existing VHDX the set's first backing file.", valueName: "disk")) var from: String?
    @Flag(help: "Allocate every block now (a fixed disk).") var fixed = false
    @Option(help: "Block size, a power of two from 1M to 256M (default 32M).", transform: ByteCount.parser) var blockSize: ByteCount?
    @Option(help: "Logical sector size: 512 or 4096.") var logicalSectorSize: UInt32?
    @Option(help: "Physical sector size: 512 or 4096.") var physicalSectorSize: UInt32?
    @Option(help: "Change tracking unit (default 64K).", transform: ByteCount.parser) var granule: ByteCount?
    @Option(help: TrackingArguments.historyHelp) var history: UInt32?
    @Option(help: ArgumentHelp("Where backing files go (this one and every checkpoint's), relative to SET's folder and inside it; created if missing.", valueName: "dir")) var folder: String = ""
    @Flag(help: "Replace SET if it exists.") var force = false

    func validate() throws {
        if (size == nil) == (from == nil) { throw ValidationError("give either a SIZE or --from DISK") }
        if from != nil && (fixed || blockSize != nil || logicalSectorSize != nil || physicalSectorSize != nil) {
            throw ValidationError("--from takes the disk as it is: drop the layout options")
        }
        guard (blockSize?.bytes ?? 0) <= UInt64(UInt32.max) else { throw ValidationError("block size must be below 4 GiB") }
        try TrackingArguments.validate(granule: granule, history: history)
    }

    func run() throws {
        let tracking = SetTrackingOptions(granule: granule?.bytes, history: history)
        if let problem = granuleProblem() { Output.fail(VHDXError(.invalidArgument, problem, path: from ?? set), code: 64) }
        do {
            let record: SetRecord
            if let from {
                record = try VHDSet.create(path: set, from: from, tracking: tracking, folder: folder, overwrite: force)
            } else {
                var o = CreateOptions(virtualSize: size!.bytes)
                o.fixed = fixed
                if let blockSize { o.blockSize = UInt32(blockSize.bytes) }
                if let logicalSectorSize { o.logicalSectorSize = logicalSectorSize }
                if let physicalSectorSize { o.physicalSectorSize = physicalSectorSize }
                record = try VHDSet.create(path: set, options: o, tracking: tracking, folder: folder, overwrite: force)
            }
            Output.message("created set {\(record.setID)}: active leaf \(printable(record.leafPath)), change tracking on")
        } catch { Output.fail(error) }
    }

    /// A granule outside the backing file's bounds (its logical sector size to its block size)
    /// is a usage error found before anything is created: the new disk's bounds come from the
    /// options, those of a --from DISK from the disk (one that cannot be opened is left to the
    /// create to report).
    func granuleProblem() -> String? {
        guard granule != nil else { return nil }
        if let from {
            guard let disk = try? VHDXFile.openFile(path: from) else { return nil }
            return TrackingArguments.problem(granule: granule, history: history, for: disk)
        }
        var o = CreateOptions(virtualSize: size!.bytes)
        if let blockSize { o.blockSize = UInt32(blockSize.bytes) }
        if let logicalSectorSize { o.logicalSectorSize = logicalSectorSize }
        return TrackingArguments.problem(granule: granule, history: history, logicalSectorSize: UInt64(o.logicalSectorSize),
                                         blockSize: UInt64(o.blockSize), virtualSize: o.virtualSize)
    }
}
