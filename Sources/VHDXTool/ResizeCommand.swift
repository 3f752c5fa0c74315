import ArgumentParser
import VHDX

struct ResizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resize",
        abstract: "Grow or shrink a disk (Resize-VHD): shrinking only drops space that holds no data."
    )

    @Argument(help: "The VHDX file.") var file: String
    @Argument(help: "The new virtual size (K/M/G/T suffixes accepted).", transform: ByteCount.parser) var size: ByteCount?
    @Flag(help: "Shrink to the smallest size that keeps every non-zero byte.") var toMinimum = false

    func validate() throws {
        guard (size != nil) != toMinimum else { throw ValidationError("give either SIZE or --to-minimum" + ByteCount.negativeArgumentNote) }
        try SetName.refuse(file, as: "FILE", in: "resize", "resizing a set is not supported")
    }

    func run() throws {
        do {
            let image = try TrackedOpen.file(file, writable: true)
            let old = image.virtualSize
            let target = try size?.bytes ?? image.minimumSize()
            try image.resize(to: target)
            try image.close()
            Output.message("resized \(file) from \(Output.size(old)) to \(Output.size(target))")
        } catch { Output.fail(error) }
    }
}
