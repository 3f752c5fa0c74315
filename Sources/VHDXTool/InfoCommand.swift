import ArgumentParser
import VHDX
import VHDXChangeTracking
import VHDXFormat

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Describe an image (never modifies it).")

    @Argument(help: "The VHDX or AVHDX file.") var file: String
    @Flag(help: "JSON on stdout.") var json = false
    @Flag(help: "Also open and describe every parent of a differencing image.") var chain = false
    @OptionGroup var parents: ParentArguments

    func run() throws {
        // A stream is not an image (README: not VHDX is exit 1 here); say what it is.
        ExportStreamArgument.refuse(self.file, code: 1)
        let target = ImageTarget.resolveOrExit(self.file, writable: false, parents: parents)
        defer { target.hold() }
        let file = target.path
        let image: VHDXFile
        let summary: AllocationSummary
        let fileSize: UInt64
        let tracking: TrackingStatus?
        do {
            image = chain ? try VHDXFile.openChain(path: file, parents: parents.options) : try VHDXFile.openFile(path: file)
            summary = try image.allocationSummary()
            fileSize = try image.fileSize()
            tracking = try ChangeTracker.attach(to: image)?.status
        } catch { Output.fail(error) }
        let l = image.layout
        let logState: String
        if let r = image.logReplay {
            logState = "pending log of \(r.entryCount) entries (sequence \(r.firstSequenceNumber)...\(r.lastSequenceNumber)) applied in memory; the file is unchanged"
        } else {
            logState = "clean"
        }
        let counts: [(String, UInt64)] = [Extent.Kind.data, .partial, .zero, .unmapped, .notPresent, .undefined, .invalid]
            .map { ($0.rawValue, summary.blockCounts[$0] ?? 0) }
        let locator = l.parentLocator?.entries ?? []
        if json {
            let value = JSON.object([
                ("filename", .string(file)),
                ("format", .string("vhdx")),
                ("type", .string(image.diskType.rawValue)),
                ("virtual-size", .int(image.virtualSize)),
                ("file-size", .int(fileSize)),
                ("block-size", .int(image.blockSize)),
                ("logical-sector-size", .int(UInt64(l.logicalSectorSize))),
                ("physical-sector-size", .int(UInt64(l.physicalSectorSize))),
                ("virtual-disk-id", .string(l.virtualDiskID.description)),
                ("data-write-guid", .string(l.header.dataWriteGUID.description)),
                ("file-write-guid", .string(l.header.fileWriteGUID.description)),
                ("log-guid", .string(l.header.logGUID.description)),
                ("creator", .string(l.fileIdentifier.creator)),
                ("log", .object([
                    ("state", .string(image.logReplay == nil ? "clean" : "replayed-in-memory")),
                    ("offset", .int(l.header.logOffset)), ("length", .int(UInt64(l.header.logLength))),
                    ("entries-replayed", .int(UInt64(image.logReplay?.entryCount ?? 0))),
                ])),
                ("parent-locator", l.parentLocator == nil ? .null : .object(locator.map { ($0.key, JSON.string($0.value)) })),
                ("block-counts", .object(counts.map { ($0.0, JSON.int($0.1)) })),
                ("sector-bitmap-blocks", .int(summary.sectorBitmapBlocks)),
                ("allocated-bytes", .int(summary.allocatedBytes)),
                ("fragmentation-percent", .double(summary.fragmentationPercent)),
                ("change-tracking", TrackStatusCommand.json(tracking)),
                ("notes", .array(image.findings.map { .string($0.description) })),
            ] + (chain ? [("chain", .array(try chainLayers(image).map { layer in .object(layer.map { ($0.0, $0.1.json) }) }))] : []))
            Output.data(value.text)
            return
        }
        var lines: [String] = [
            "image: \(file)",
            "format: VHDX (\(image.diskType.rawValue))",
            "virtual size: \(Output.size(image.virtualSize))",
            "file size: \(Output.size(fileSize))",
            "block size: \(Output.size(image.blockSize))",
            "sector size: \(l.logicalSectorSize) logical, \(l.physicalSectorSize) physical",
            "virtual disk id: {\(l.virtualDiskID)}",
            "data write guid: {\(l.header.dataWriteGUID)}",
            "file write guid: {\(l.header.fileWriteGUID)}",
            "creator: \(l.fileIdentifier.creator.isEmpty ? "(none)" : l.fileIdentifier.creator)",
            "log: \(logState)",
            "blocks: " + counts.filter { $0.1 > 0 }.map { "\($0.1) \($0.0)" }.joined(separator: ", "),
            "allocated: \(Output.size(summary.allocatedBytes))",
            "fragmentation: \(String(format2(summary.fragmentationPercent)))%",
        ]
        if summary.sectorBitmapBlocks > 0 { lines.append("sector bitmap blocks: \(summary.sectorBitmapBlocks)") }
        if !locator.isEmpty {
            lines.append("parent locator:")
            for e in locator { lines.append("  \(e.key): \(e.value)") }
        }
        if let tracking {
            lines += TrackStatusCommand.lines(tracking).map { $0 == "change tracking: enabled" ? $0 : "  " + $0 }
        } else {
            lines.append("change tracking: not enabled")
        }
        for f in image.findings { lines.append("note: \(f)") }
        if chain {
            lines.append("chain (top first):")
            for (i, layer) in try chainLayers(image).enumerated() {
                lines.append("  [\(i)] " + layer.map { "\($0.0): \($0.1.text)" }.joined(separator: ", "))
            }
        }
        // Every line may carry the image's own strings or file names: escaped for the terminal.
        Output.data(lines.map(printable).joined(separator: "\n"))
    }
}

/// One line per layer of the chain: where it is, what it is, and how it links to its parent.
private func chainLayers(_ top: VHDXFile) throws -> [[(String, ChainField)]] {
    try top.chain.map { layer in
        var fields: [(String, ChainField)] = [
            ("path", .text(layer.path)), ("type", .text(layer.diskType.rawValue)),
            ("virtual-size", .size(layer.virtualSize)), ("file-size", .size(try layer.fileSize())),
            ("block-size", .size(layer.blockSize)), ("data-write-guid", .text(layer.header.dataWriteGUID.description)),
        ]
        if let link = layer.parentLink {
            fields.append(("parent", .text(link.path)))
            fields.append(("linked-by", .text(link.match.rawValue)))
        }
        return fields
    }
}

private enum ChainField {
    case text(String), size(UInt64)
    var json: JSON { switch self { case .text(let s): .string(s); case .size(let n): .int(n) } }
    var text: String { switch self { case .text(let s): s; case .size(let n): Output.humanSize(n) } }
}

func format2(_ v: Double) -> String {
    let r = (v * 100).rounded() / 100
    return String(r)
}
