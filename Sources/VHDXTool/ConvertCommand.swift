#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import VHDX

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert an image; the output format follows DST's extension.",
        discussion: """
            DST ending in .vhdx: VHDX output (not supported yet). Anything else: a raw, sparse \
            disk image. "-": raw bytes to stdout. The output is written to a temporary file and \
            renamed into place; the source is opened read-only and never modified.
            """
    )

    @Argument(help: "The source VHDX file.") var source: String
    @Argument(help: "The destination: a path, or - for stdout.") var destination: String
    @Flag(name: [.short, .long], help: "Show progress on stderr even when it is not a terminal.") var progress = false

    func run() throws {
        if destination != "-" && sameFile(source, destination) {
            Output.fail(ValidationError("refusing to overwrite the source \(source) with its own conversion"))
        }
        if destination.lowercased().hasSuffix(".vhdx") || destination.lowercased().hasSuffix(".avhdx") {
            Output.fail(ValidationError("writing VHDX output is not supported yet; convert to raw (any other extension) or to - for stdout"))
        }
        do {
            let image = try VHDXFile.open(path: source)
            let converter = RawConverter(source: image)
            let reporter = ProgressReporter(label: "convert", requested: progress)
            if destination == "-" {
                try converter.write(toDescriptor: 1, progress: reporter.update)
            } else {
                try converter.write(toPath: destination, progress: reporter.update)
            }
        } catch { Output.fail(error) }
    }
}

/// Whether two paths name the same file (same device and inode), so a conversion can refuse to
/// overwrite its own input even through another name or a link.
func sameFile(_ a: String, _ b: String) -> Bool {
    var sa = stat(), sb = stat()
    guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
}
