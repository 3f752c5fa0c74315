import ArgumentParser
import VHDX
import VHDXChangeTracking

struct TrackSealCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seal",
        abstract: "Seal the current content and print its change ID (alone on stdout).",
        discussion: "Durable when printed. Take it after reading a consistent point, like a Hyper-V reference point."
    )

    @Argument(help: "The VHDX or AVHDX file.") var file: String
    @Flag(help: "JSON on stdout: {\"id\": …}.") var json = false
    @OptionGroup var parents: ParentArguments

    func run() throws {
        let target = ImageTarget.resolveOrExit(self.file, writable: true, parents: parents)
        defer { target.hold() }
        let file = target.path
        let id: ChangeID
        do {
            let image = try TrackedOpen.image(file, writable: true, parents: parents)
            let tracker = try ChangeTracking.tracker(of: image)
            id = try tracker.seal()
            try image.close()
        } catch let e as ChangeTrackingError where e.reason != .engine {
            Output.fail(e, code: 4)
        } catch { Output.fail(error) }
        Output.data(json ? JSON.object([("id", .string(id.description))]).text : id.description)
    }
}
