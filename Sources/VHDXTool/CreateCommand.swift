import ArgumentParser
import VHDX
import VHDXChangeTracking

struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a fixed, dynamic or differencing VHDX (New-VHD defaults: 32 MiB blocks, 512/4096 sectors).",
        discussion: """
            With --parent, FILE is a differencing image (a child) over PARENT: it takes the parent's sector \
            sizes and disk ID, 2 MiB blocks unless --block-size says otherwise, and SIZE defaults to the \
            parent's (it may be larger, never smaller). The parent is only read. The image is built as a \
            temporary file and renamed into place once complete and flushed; without --force that rename \
            refuses an existing name, even one another process created meanwhile. --force replaces FILE \
            and keeps its permission bits.
            """
    )

    @Argument(help: "The new file.") var file: String
    @Argument(help: "Virtual size (K/M/G/T suffixes accepted); optional with --parent.", transform: ByteCount.parser) var size: ByteCount?
    @Option(help: ArgumentHelp("Create a differencing image over this parent.", valueName: "parent")) var parent: String?
    @Flag(help: "Allocate every block now (a fixed disk).") var fixed = false
    @Option(help: "Block size, a power of two from 1M to 256M (default 32M; 2M for a differencing image).", transform: ByteCount.parser) var blockSize: ByteCount?
    @Option(help: "Logical sector size: 512 or 4096 (a child's is its parent's).") var logicalSectorSize: UInt32?
    @Option(help: "Physical sector size: 512 or 4096 (a child's is its parent's).") var physicalSectorSize: UInt32?
    // Optional with the default in the help text: the parser shows no default for an option
    // parsed by a transform (which it must be, to say why a size is refused).
    static let defaultLogSize = ByteCount(bytes: 1 << 20)
    @Option(help: "Log size, a multiple of 1M (default: \(defaultLogSize)).", transform: ByteCount.parser) var logSize: ByteCount?
    @Flag(help: "Replace FILE if it exists.") var force = false

    func validate() throws {
        guard (blockSize?.bytes ?? 0) <= UInt64(UInt32.max), (logSize?.bytes ?? 0) <= UInt64(UInt32.max) else {
            throw ValidationError("block size and log size must be below 4 GiB")
        }
        if parent == nil && size == nil { throw ValidationError("a size is needed (only a differencing image takes its parent's)" + ByteCount.negativeArgumentNote) }
        if parent != nil && (fixed || logicalSectorSize != nil || physicalSectorSize != nil) {
            throw ValidationError("a differencing image is dynamic and takes its parent's sector sizes: drop --fixed and the sector size options")
        }
        if let parent {
            try SetName.refuse(parent, as: "--parent", in: "create", "a set is not a parent; `vhdx set checkpoint SET` continues a set in a new differencing file, and `vhdx convert SET COPY.vhdx` makes a standalone copy to build on")
        }
    }

    func run() throws {
        if let parent {
            var c = ChildOptions()
            c.virtualSize = size?.bytes
            if let blockSize { c.blockSize = UInt32(blockSize.bytes) }
            if let logSize { c.logSize = UInt32(logSize.bytes) }
            do {
                try VHDXCreator.createChild(path: file, parentPath: parent, options: c, overwrite: force)
                // A child of a tracked disk tracks too (a checkpoint keeps tracking going).
                let child = try VHDXFile.openFile(path: file, writable: true)
                if try ChangeTracking.followParent(child, parent: try VHDXFile.openFile(path: parent)) {
                    try child.close()
                    Output.message("change tracking enabled in \(file), as in its parent")
                }
            } catch { Output.fail(error) }
            return
        }
        var o = CreateOptions(virtualSize: size!.bytes)
        o.fixed = fixed
        if let blockSize { o.blockSize = UInt32(blockSize.bytes) }
        if let logicalSectorSize { o.logicalSectorSize = logicalSectorSize }
        if let physicalSectorSize { o.physicalSectorSize = physicalSectorSize }
        o.logSize = UInt32((logSize ?? Self.defaultLogSize).bytes)
        do { try VHDXCreator.create(path: file, options: o, overwrite: force) } catch { Output.fail(error) }
    }
}
