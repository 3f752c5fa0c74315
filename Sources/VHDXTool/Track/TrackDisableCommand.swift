import ArgumentParser
import VHDX
import VHDXChangeTracking

struct TrackDisableCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable",
        abstract: "Stop tracking: removes the tracking region; every change ID becomes unknown."
    )

    @Argument(help: "The VHDX or AVHDX file.") var file: String

    func run() throws {
        let target = ImageTarget.resolveOrExit(self.file, writable: true)
        defer { target.hold() }
        let file = target.path
        do {
            let image = try VHDXFile.openFile(path: file, writable: true)
            try ChangeTracking.disable(image)
            try image.close()
        } catch { Output.fail(error) }
    }
}
