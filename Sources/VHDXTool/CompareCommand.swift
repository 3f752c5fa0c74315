import ArgumentParser
import VHDX

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare the virtual-disk contents of two images (VHDX or raw), like qemu-img compare.",
        discussion: """
            Each input is VHDX when it starts with the signature "vhdxfile", raw otherwise; both \
            are opened read-only. By default unallocated space equals zeros and, when the sizes \
            differ, the larger disk's tail must be all zeros. --strict: sizes must be equal and \
            allocation must match as well as content. Exit codes: 0 identical; 1 different (the \
            first differing offset on stdout); 2 error (an input could not be opened or read).
            """
    )

    @Argument(help: "The first image: VHDX or raw.") var first: String
    @Argument(help: "The second image: VHDX or raw.") var second: String
    @Flag(name: [.short, .long], help: "Fail on a size difference, and on allocated vs unallocated regions even when both read as zeros.")
    var strict = false
    @Flag(help: "JSON on stdout.") var json = false
    @OptionGroup var parents: ParentArguments
    @Option(help: ArgumentHelp("The parent of SECOND, when it is a differencing image (--parent is FIRST's).", valueName: "path"))
    var secondParent: String?
    @Flag(name: [.short, .long], help: "Show progress on stderr even when it is not a terminal.") var progress = false

    func run() throws {
        // An input that cannot be opened is exit 2 (error), never 1 ("different"): also a set
        // whose files are missing or that cannot be opened.
        let targetA: ImageTarget, targetB: ImageTarget
        do {
            targetA = try ImageTarget.resolve(self.first, writable: false, parents: parents)
            targetB = try ImageTarget.resolve(self.second, writable: false, parents: parents)
        } catch { Output.fail(error, code: 2) }
        defer { targetA.hold(); targetB.hold() }
        let first = targetA.path, second = targetB.path
        let result: CompareResult
        let reporter = ProgressReporter(label: "compare", requested: progress)
        do {
            let a = try DiskImage(path: first, parents: parents.options)
            var secondOptions = parents.options
            secondOptions.parentPath = secondParent
            let b = try DiskImage(path: second, parents: secondOptions)
            if a.virtualSize != b.virtualSize {
                Output.message("vhdx: the images differ in size: \(first) is \(Output.size(a.virtualSize)), \(second) is \(Output.size(b.virtualSize))"
                               + (strict ? "" : "; the tail of the larger one is compared against zeros"))
            }
            result = try a.compare(with: b, options: CompareOptions(strict: strict), progress: reporter.update)
        } catch {
            // A rewritten progress line must not swallow the message.
            if reporter.enabled && reporter.tty && reporter.lastPercent >= 0 && reporter.lastPercent < 100 { Output.raw("\n") }
            Output.message("vhdx: \(error.detailedDescription)")
            throw ExitCode(2)
        }
        if reporter.enabled && reporter.tty && reporter.lastPercent >= 0 && reporter.lastPercent < 100 { Output.raw("\n") }
        if json {
            let value = JSON.object([
                ("result", .string(result.identical ? "identical" : "different")),
                ("first-difference", result.firstDifference.map { .int($0) } ?? .null),
                ("size-a", .int(result.sizeA)),
                ("size-b", .int(result.sizeB)),
                ("compared-bytes", .int(result.comparedBytes)),
            ])
            Output.data(value.text)
        } else if let offset = result.firstDifference {
            let what: String
            switch result.reason {
            case .allocation: what = "allocation mismatch"
            case .size: what = "size mismatch"
            default: what = "content mismatch"
            }
            Output.data("Images differ: \(what) at offset \(offset) (0x\(String(offset, radix: 16))).")
        } else {
            Output.data("Images are identical.")
        }
        if !result.identical { throw ExitCode(1) }
    }
}
