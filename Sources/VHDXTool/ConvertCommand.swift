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
            SRC is a VHDX (or a differencing image, read through its chain) or a raw disk image; a SRC \
            named .vhdx/.avhdx must be VHDX, and one named as another format (below) is refused. \
            DST ending in .vhdx or .avhdx: a VHDX (dynamic unless --fixed; blocks of zeros stay \
            unallocated). DST ending in .vhd, .vpc, .qcow2, .qcow, .qed, .vmdk, .vdi, .hdd, .hds, .dmg or \
            .vhds: refused, those formats are not written. Any other name (.raw, .img, none…): a raw, \
            sparse disk image. "-": raw bytes to stdout. The output is written to a temporary file \
            and renamed into place; an existing DST is replaced only with --force (keeping its \
            permissions), and never when it is SRC or one of SRC's parents. The source is opened \
            read-only and never modified.
            """
    )

    @Argument(help: "The source: a VHDX or a raw disk image.") var source: String
    @Argument(help: "The destination: a path, or - for stdout.") var destination: String
    @Flag(name: [.short, .long], help: "Show progress on stderr even when it is not a terminal.") var progress = false
    @Flag(help: "Replace DST if it exists.") var force = false
    @Flag(help: "VHDX output: allocate every block (a fixed disk).") var fixed = false
    // Optional with the default in the help text: the parser shows no default for an option
    // parsed by a transform (which it must be, to say why a size is refused).
    static let defaultBlockSize = ByteCount(bytes: 32 << 20)
    @Option(help: "VHDX output: block size, a power of two from 1M to 256M (default: \(defaultBlockSize)).", transform: ByteCount.parser)
    var blockSize: ByteCount?
    @Option(help: "VHDX output: logical sector size, 512 or 4096 (default: the source's, else 512).") var logicalSectorSize: UInt32?
    @Option(help: "VHDX output: physical sector size, 512 or 4096 (default: the source's, else 4096).") var physicalSectorSize: UInt32?
    @OptionGroup var parents: ParentArguments

    func validate() throws {
        try OutputFormat.checkSource(source)
        _ = try OutputFormat(destination: destination)
    }

    func run() throws {
        let target = ImageTarget.resolveOrExit(self.source, writable: false, parents: parents)
        defer { target.hold() }
        let source = target.path
        if destination != "-" && sameFile(source, destination) {
            Output.fail(ValidationError("refusing to overwrite the source \(source) with its own conversion"))
        }
        let format = try OutputFormat(destination: destination)
        // Only the library's public API from here (DiskImage's convert and writeRaw), as a user's
        // program would call it.
        do {
            let disk = try DiskImage(path: source, parents: parents.options)
            // A file named as VHDX without the signature is damaged or mislabelled; copying its
            // bytes as a raw disk would hide that.
            if disk.format == .raw, ["vhdx", "avhdx"].contains(OutputFormat.fileExtension(source)) {
                throw VHDXError(.corrupt, "not a VHDX file: it does not start with the signature \"vhdxfile\" (to copy its bytes as a raw disk image, give it a name not ending in .vhdx)", path: source)
            }
            let reporter = ProgressReporter(label: "convert", requested: progress)
            switch format {
            case .vhdx:
                let blockSize = blockSize ?? Self.defaultBlockSize
                guard blockSize.bytes <= UInt64(UInt32.max) else { throw ValidationError("block size must be below 4 GiB") }
                let layout = VHDXConversionOptions(fixed: fixed, blockSize: UInt32(blockSize.bytes),
                                                   logicalSectorSize: logicalSectorSize, physicalSectorSize: physicalSectorSize)
                try disk.convert(to: destination, format: .vhdx(layout), overwrite: force, progress: reporter.update)
            case .raw:
                try disk.convert(to: destination, format: .raw, overwrite: force, progress: reporter.update)
            case .stdout:
                try disk.writeRaw(toDescriptor: 1, progress: reporter.update)
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
