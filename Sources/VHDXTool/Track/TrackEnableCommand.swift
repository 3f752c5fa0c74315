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
            change ID after enabling: answers start there. On a disk already tracked (a VHD Set is \
            created tracked) it succeeds and says "already enabled", changing nothing, unless \
            --granule or --history asks for other settings than the disk's (exit 64: `track \
            disable` first to start over).
            """
    )

    @Argument(help: "The VHDX or AVHDX file.") var file: String
    @Option(help: "Tracking unit: a power of two from the logical sector size to the block size.") var granule: ByteCount?
    @Option(help: TrackingArguments.historyHelp) var history: UInt32?

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
            // Idempotent, like `systemctl enable`: already tracked with the settings asked for
            // (or none asked for) is success, and nothing is written.
            if let existing = try ChangeTracker.attach(to: image) {
                let s = existing.status
                var differs: [String] = []
                if let granule, granule.bytes != s.granule { differs.append("--granule \(Output.humanSize(granule.bytes)) (it tracks with \(Output.humanSize(s.granule)))") }
                if let history, history != s.historyLimit { differs.append("--history \(history) (it keeps \(s.historyLimit))") }
                try image.close()
                if !differs.isEmpty {
                    Output.fail(VHDXError(.invalidArgument, "change tracking is already enabled with other settings: \(differs.joined(separator: ", ")); `vhdx track disable` first to start over (every change ID is then lost)", path: file), code: 64)
                }
                Output.message("change tracking already enabled: granule \(Output.humanSize(s.granule)), history \(TrackingArguments.history(s.historyLimit))")
                return
            }
            let tracker = try ChangeTracking.enable(image, granule: granule?.bytes, history: history)
            try image.close()
            Output.message("change tracking enabled: granule \(Output.humanSize(tracker.status.granule)), history \(TrackingArguments.history(tracker.status.historyLimit)), region \(Output.humanSize(tracker.status.regionBytes))")
        } catch { Output.fail(error) }
    }
}
