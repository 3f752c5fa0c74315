import ArgumentParser
import VHDX

struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a fixed or dynamic VHDX (New-VHD defaults: 32 MiB blocks, 512/4096 sectors).",
        discussion: "The image is built as a temporary file and renamed into place once complete and flushed."
    )

    @Argument(help: "The new file.") var file: String
    @Argument(help: "Virtual size (K/M/G/T suffixes accepted).") var size: ByteCount
    @Flag(help: "Allocate every block now (a fixed disk).") var fixed = false
    @Option(help: "Block size, a power of two from 1M to 256M.") var blockSize: ByteCount = ByteCount(bytes: 32 << 20)
    @Option(help: "Logical sector size: 512 or 4096.") var logicalSectorSize: UInt32 = 512
    @Option(help: "Physical sector size: 512 or 4096.") var physicalSectorSize: UInt32 = 4096
    @Option(help: "Log size, a multiple of 1M.") var logSize: ByteCount = ByteCount(bytes: 1 << 20)
    @Flag(help: "Replace FILE if it exists.") var force = false

    func run() throws {
        var o = CreateOptions(virtualSize: size.bytes)
        o.fixed = fixed
        guard blockSize.bytes <= UInt64(UInt32.max), logSize.bytes <= UInt64(UInt32.max) else {
            throw ValidationError("block size and log size must be below 4 GiB")
        }
        o.blockSize = UInt32(blockSize.bytes)
        o.logicalSectorSize = logicalSectorSize
        o.physicalSectorSize = physicalSectorSize
        o.logSize = UInt32(logSize.bytes)
        do { try VHDXCreator.create(path: file, options: o, overwrite: force) } catch { Output.fail(error) }
    }
}
