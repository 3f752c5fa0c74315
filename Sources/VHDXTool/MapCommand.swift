import ArgumentParser
import VHDX

struct MapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "map",
        abstract: "List the extents of the virtual disk and where each one lives.",
        discussion: """
            States: data, zero, unmapped, not-present, partial, undefined. Adjacent runs of one state are \
            merged (data only when contiguous in the file too). A differencing image is mapped through its \
            chain: each extent names the layer that answers for it (0 = FILE, 1 = its parent, …) and that \
            layer's file; not-present then means no layer holds the bytes (they read as zeros). --own maps \
            FILE's own block states only, without opening parents.
            """
    )

    @Argument(help: "The VHDX or AVHDX file.") var file: String
    @Flag(help: "JSON on stdout.") var json = false
    @OptionGroup var parents: ParentArguments
    @Flag(help: "Map only FILE's own block states (a differencing image's parents are not opened).") var own = false
    @Option(help: "Start of the range to map (bytes; K/M/G/T suffixes accepted; default: 0).", transform: ByteCount.parser) var offset: ByteCount?
    @Option(help: "Length of the range to map (default: to the end of the disk).", transform: ByteCount.parser) var length: ByteCount?

    func run() throws {
        // A stream is not an image (README: not VHDX is exit 1 here); say what it is.
        ExportStreamArgument.refuse(self.file, code: 1)
        let target = ImageTarget.resolveOrExit(self.file, writable: false, parents: parents)
        defer { target.hold() }
        let file = target.path
        let image: VHDXFile
        do { image = try VHDXFile.openFile(path: file) } catch { Output.fail(error) }
        let start = offset?.bytes ?? 0
        guard start <= image.virtualSize else {
            Output.fail(ValidationError("--offset \(start) is beyond the \(image.virtualSize)-byte disk"))
        }
        let end = min(image.virtualSize, length.map { start &+ $0.bytes < start ? UInt64.max : start + $0.bytes } ?? image.virtualSize)
        if image.diskType == .differencing && !own { return mapChain(image, start, end) }
        var items: [JSON] = []
        if !json { Output.data(pad("offset", 20) + pad("length", 20) + pad("state", 13) + "file offset") }
        do {
            try image.forEachExtent { whole in
                // Clip each extent to the requested range.
                guard whole.virtualOffset < end, whole.virtualOffset + whole.length > start else { return }
                var e = whole
                let cut = start > e.virtualOffset ? start - e.virtualOffset : 0
                e.virtualOffset += cut
                e.fileOffset = e.fileOffset.map { $0 + cut }
                e.length = min(whole.virtualOffset + whole.length, end) - e.virtualOffset
                if json {
                    var fields: [(String, JSON)] = [("offset", .int(e.virtualOffset)), ("length", .int(e.length)), ("state", .string(e.kind.rawValue))]
                    fields.append(("file-offset", e.fileOffset.map { JSON.int($0) } ?? .null))
                    items.append(.object(fields))
                } else {
                    Output.data(pad("0x" + String(e.virtualOffset, radix: 16), 20) + pad("0x" + String(e.length, radix: 16), 20)
                                + pad(e.kind.rawValue, 13) + (e.fileOffset.map { "0x" + String($0, radix: 16) } ?? "-"))
                }
            }
        } catch { Output.fail(error) }
        if json { Output.data(JSON.array(items).text) }
    }

    /// Extents as the chain presents them, with the layer answering for each.
    private func mapChain(_ image: VHDXFile, _ start: UInt64, _ end: UInt64) {
        var items: [JSON] = []
        do {
            try image.attachParents(parents.options)
            let paths = image.chain.map { $0.path }
            if !json { Output.data(pad("offset", 20) + pad("length", 20) + pad("state", 13) + pad("layer", 7) + pad("file offset", 20) + "file") }
            guard start < end else { if json { Output.data("[]") }; return }
            try image.forEachResolvedExtent(from: start, to: end) { e in
                if json {
                    items.append(.object([("offset", .int(e.virtualOffset)), ("length", .int(e.length)), ("state", .string(e.kind.rawValue)),
                                          ("file-offset", e.fileOffset.map { JSON.int($0) } ?? .null),
                                          ("layer", .int(UInt64(e.layer))), ("file", .string(paths[e.layer]))]))
                } else {
                    Output.data(pad("0x" + String(e.virtualOffset, radix: 16), 20) + pad("0x" + String(e.length, radix: 16), 20)
                                + pad(e.kind.rawValue, 13) + pad(String(e.layer), 7)
                                + pad(e.fileOffset.map { "0x" + String($0, radix: 16) } ?? "-", 20) + paths[e.layer])
                }
            }
        } catch { Output.fail(error) }
        if json { Output.data(JSON.array(items).text) }
    }

    private func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
}
