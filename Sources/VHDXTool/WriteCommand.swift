#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import VHDX

struct WriteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write",
        abstract: "Write to an image's virtual disk (what qemu-io's write does), for scripts and tests.",
        discussion: """
            Exactly one source: --input FILE (or - for stdin), --pattern BYTE with --length, \
            --zero with --length (the range reads as zeros; whole blocks stop using space), or \
            --trim with --length (whole blocks are discarded). Metadata changes go through the log.
            """
    )

    @Argument(help: "The VHDX or AVHDX file (a differencing image's parents are opened read-only).") var file: String
    @Option(help: "Virtual byte offset (K/M/G/T suffixes accepted).", transform: ByteCount.parser) var offset: ByteCount
    @Option(help: "Bytes to write from this file, or - for stdin.") var input: String?
    @Option(help: "Fill with this byte (e.g. 0xa5).") var pattern: String?
    @Flag(help: "Make the range read as zeros.") var zero = false
    @Flag(help: "Discard the range.") var trim = false
    @Option(help: "Length for --pattern, --zero and --trim; limits --input.", transform: ByteCount.parser) var length: ByteCount?
    @OptionGroup var parents: ParentArguments

    func validate() throws {
        let sources = [input != nil, pattern != nil, zero, trim].filter { $0 }.count
        guard sources == 1 else { throw ValidationError("give exactly one of --input, --pattern, --zero, --trim") }
        if input == nil && length == nil { throw ValidationError("--length is required with --pattern, --zero and --trim") }
        if let pattern, parseByte(pattern) == nil { throw ValidationError("--pattern takes a byte: 0..255 or 0x00..0xff") }
    }

    func run() throws {
        let target = ImageTarget.resolveOrExit(self.file, writable: true, parents: parents)
        defer { target.hold() }
        let file = target.path
        do {
            let image = try TrackedOpen.image(file, writable: true, parents: parents)
            let start = offset.bytes
            if zero {
                try image.writeZeroes(at: start, length: length!.bytes)
            } else if trim {
                try image.trim(at: start, length: length!.bytes)
            } else if let pattern {
                let byte = parseByte(pattern)!
                let total = length!.bytes
                // The CLI writes in pieces: the whole request is checked before the first.
                try image.checkRange(offset: start, length: total)
                let chunk = [UInt8](repeating: byte, count: 8 << 20)
                var done: UInt64 = 0
                while done < total {
                    let n = Int(min(UInt64(chunk.count), total - done))
                    try image.write(Array(chunk[0..<n]), at: start + done)
                    done += UInt64(n)
                }
            } else if let input {
                let room = image.virtualSize - min(start, image.virtualSize)
                let source = try InputSource(path: input, limit: length?.bytes, room: room)
                if source.exceedsRoom {
                    throw VHDXError(.outOfBounds, "the input holds more than the \(room) bytes between offset \(start) and the end of the \(image.virtualSize)-byte disk; nothing was written",
                                    path: file)
                }
                try image.checkRange(offset: start, length: source.length)
                try source.copy { (bytes, at) throws(VHDXError) in try image.write(bytes, at: start + at) }
            }
            try image.close()
        } catch { Output.fail(error) }
    }
}

func parseByte(_ s: String) -> UInt8? {
    if s.lowercased().hasPrefix("0x") { return UInt8(s.dropFirst(2), radix: 16) }
    return UInt8(s)
}
