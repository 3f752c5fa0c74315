import ArgumentParser
import VHDX
import VHDXChangeTracking

struct TrackEnableCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enable",
        abstract: "Start tracking changes (adds the tracking region through the log).",
        discussion: """
            The region takes 8 KiB plus (history + 2) slots of max(64 KiB, 256 KiB per TiB of \
            virtual disk), rounded up to 1 MiB: 2 MiB up to 256 GiB of virtual disk with the defaults, \
            about 4.5 MiB per TiB beyond that (256 KiB per TiB per retained ID). Seal a first \
            change ID after enabling: answers start there.
            """
    )

    @Argument(help: "The VHDX or AVHDX file.") var file: String
    @Option(help: "Tracking unit: a power of two from the logical sector size to the block size.") var granule: ByteCount?
    @Option(help: TrackingArguments.historyHelp) var history: UInt32 = TrackingGeometry.defaultHistory

    func validate() throws {
        try TrackingArguments.validate(granule: granule, history: history)
    }

    func run() throws {
        let target = ImageTarget.resolveOrExit(self.file, writable: true)
        defer { target.hold() }
        let file = target.path
        do {
            let image = try VHDXFile.openFile(path: file, writable: true)
            // The granule's bounds are the image's: a usage error too (64), before anything is written.
            if let problem = TrackingArguments.problem(granule: granule, history: history, for: image) {
                Output.fail(VHDXError(.invalidArgument, problem, path: file), code: 64)
            }
            let tracker = try ChangeTracking.enable(image, granule: granule?.bytes, history: history)
            try image.close()
            Output.message("change tracking enabled: granule \(Output.humanSize(tracker.status.granule)), history \(TrackingArguments.history(tracker.status.historyLimit)), region \(Output.humanSize(tracker.status.regionBytes))")
        } catch { Output.fail(error) }
    }
}
