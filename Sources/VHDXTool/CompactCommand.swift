import ArgumentParser
import VHDX

struct CompactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Release blocks that read as zeros and shrink the file (Optimize-VHD); dynamic disks only."
    )

    @Argument(help: "The VHDX file.") var file: String
    @Flag(help: "JSON on stdout.") var json = false

    func validate() throws {
        try SetName.refuse(file, as: "FILE", in: "compact", "`vhdx set optimize SET` is a set's Optimize-VHD")
    }

    func run() throws {
        do {
            let image = try TrackedOpen.file(file, writable: true)
            let r = try image.compact()
            try image.close()
            if json {
                Output.data(JSON.object([
                    ("zero-blocks-released", .int(UInt64(r.zeroBlocksReleased))), ("blocks-moved", .int(UInt64(r.blocksMoved))),
                    ("file-size-before", .int(r.fileSizeBefore)), ("file-size-after", .int(r.fileSizeAfter)),
                    ("disk-usage-before", r.diskUsageBefore.map { .int($0) } ?? .null), ("disk-usage-after", r.diskUsageAfter.map { .int($0) } ?? .null),
                    ("bytes-reclaimed", .int(r.bytesReclaimed)),
                ]).text)
            } else {
                Output.data("released \(r.zeroBlocksReleased) all-zero blocks, moved \(r.blocksMoved) blocks; file size \(Output.size(r.fileSizeBefore)) -> \(Output.size(r.fileSizeAfter)); reclaimed \(Output.size(r.bytesReclaimed)) of disk space")
            }
        } catch { Output.fail(error) }
    }
}
