import ArgumentParser
import VHDXExport
import VHDXFormat

struct BackupsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backups",
        abstract: "What a folder of export streams holds.",
        subcommands: [BackupsListCommand.self]
    )
}

struct BackupsListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Each export stream of a folder and whether its chain is complete, from headers and trailers alone.",
        discussion: """
            Reads two small pieces of each file (the header record at its front, the trailer \
            record at its end), never the records between: disk id, kind (full, incremental, \
            consolidated), base and target change IDs, base stream and stream ids, virtual size, \
            bytes, creation time, and the chain a restore of it takes. An incremental whose base is \
            no stream of the folder (by restore's rule: the change ID and the named export) is \
            incomplete, and so is one built on such. Files that are not streams are skipped \
            (listed as such); a stream without an intact trailer (truncated, still being \
            written, damaged) is listed as unusable. Subfolders are not searched.

            Exit codes: 0 listed (incomplete chains included: see `complete` in the JSON); 1 the \
            folder or a file in it cannot be read.
            """
    )

    @Argument(help: "The folder.") var folder: String
    @Flag(help: "JSON on stdout.") var json = false
    @OptionGroup var objectStore: ObjectStoreOptions

    func run() throws {
        objectStore.apply(to: [folder])
        let l: BackupListing
        do { l = try BackupCatalog.list(folder: folder) } catch { Output.fail(error) }
        if json {
            Output.data(JSON.object([
                ("folder", .string(folder)),
                ("streams", .array(l.streams.map(Self.json))),
                ("unusable", .array(l.unusable.map { .object([("name", .string($0.name)), ("reason", .string($0.reason))]) })),
                ("skipped", .array(l.skipped.map { .object([("name", .string($0.name)), ("reason", .string($0.reason))]) })),
            ]).text)
            return
        }
        var lines: [String] = []
        var disk: GUID?
        for s in l.streams {
            let h = s.header
            if h.sourceDiskID != disk {
                disk = h.sourceDiskID
                let mine = l.streams.filter { $0.header.sourceDiskID == h.sourceDiskID }
                let orphans = mine.filter { !$0.isComplete }.count
                lines.append("disk {\(h.sourceDiskID)}: \(mine.count) stream\(mine.count == 1 ? "" : "s")"
                             + (orphans == 0 ? ", every chain complete" : ", \(orphans) incomplete"))
            }
            lines.append("  \(printable(s.name))  \(s.kind.rawValue)  \(UTCTime.iso8601(seconds: h.created / 1000))  "
                         + "size \(Output.humanSize(h.virtualSize))  \(Output.humanSize(s.bytes)) stored  "
                         + (s.isComplete ? "complete" : "INCOMPLETE"))
            lines.append("      stream {\(h.streamID)}" + (s.kind == .consolidated ? ", stands for {\(h.standsFor)}" : ""))
            if let b = h.baseID { lines.append("      base   \(b)" + (h.baseStreamID == .zero ? "" : " (stream {\(h.baseStreamID)})")) }
            lines.append("      target \(h.targetID)")
            if let chain = s.restoreChain, chain.count > 1 { lines.append("      restore: " + chain.map(printable).joined(separator: " ")) }
            if let m = s.missing { lines.append("      missing: \(printable(m))") }
        }
        if l.streams.isEmpty { lines.append("no export streams in \(printable(folder))") }
        for n in l.unusable { lines.append("unusable: \(printable(n.name)): \(printable(n.reason))") }
        for n in l.skipped { lines.append("skipped: \(printable(n.name)): \(n.reason)") }
        Output.data(lines.joined(separator: "\n"))
    }

    static func json(_ s: BackupStream) -> JSON {
        let h = s.header
        return JSON.object([
            ("name", .string(s.name)), ("kind", .string(s.kind.rawValue)),
            ("disk-id", .string(h.sourceDiskID.description)),
            ("stream-id", .string(h.streamID.description)),
            ("base-stream-id", h.baseStreamID == .zero ? .null : .string(h.baseStreamID.description)),
            ("stands-for", h.isConsolidated ? .string(h.standsFor.description) : .null),
            ("base-id", h.baseID.map { .string($0.description) } ?? .null),
            ("target-id", .string(h.targetID.description)),
            ("virtual-size", .int(h.virtualSize)), ("bytes", .int(s.bytes)),
            ("data-bytes", .int(s.dataBytes)), ("zero-bytes", .int(s.zeroBytes)),
            ("created", .string(UTCTime.iso8601(seconds: h.created / 1000))), ("created-ms", .int(h.created)),
            ("complete", .bool(s.isComplete)),
            ("restore-chain", s.restoreChain.map { .array($0.map { .string($0) }) } ?? .null),
            ("missing", s.missing.map { .string($0) } ?? .null),
        ])
    }
}
