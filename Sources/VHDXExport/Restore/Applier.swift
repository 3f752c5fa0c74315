#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX
import VHDXFormat

/// What an apply did.
public struct ApplySummary: Sendable {
    public var holds: StreamHeader
    /// An interrupted apply of this same incremental was completed.
    public var resumed = false
    public var dataBytes: UInt64 = 0
    public var zeroBytes: UInt64 = 0
    public var seconds: Double = 0
}

/// `vhdx apply`: one incremental stream onto an image restored (or exported) by this tool.
///
/// Nothing is written until the whole incremental has been read and checked and its base is
/// the image's content (disk, change ID, export, and the image unwritten since). Then the
/// image's origin record says "applying X" (through the log), the extents are written (each
/// write is absolute, so doing them twice is harmless), and the record says "holds X" with the
/// image's new DataWriteGuid. A crash in between leaves the image marked as applying X: it is
/// refused as a base (apply of another incremental, export --base, restore from it) until
/// `apply` of X is run again, which completes it. Unmarked, it is the old export or the new one.
public enum Applier {
    public static func apply(_ incremental: String, to imagePath: String, progress: Exporter.Progress? = nil) throws(ExportError) -> ApplySummary {
        try ExportError.boundary { try applying(incremental, to: imagePath, progress: progress) }
    }

    static func applying(_ incremental: String, to imagePath: String, progress: Exporter.Progress?) throws -> ApplySummary {
        let started = Clock.now()
        // Not a VHDX at all (a raw image): no origin record can say what it holds, like a VHDX
        // without one (README: exit 2). A missing file stays the open's error.
        if FileIdentity(path: imagePath) != nil, try !OriginStore.looksLikeVHDX(imagePath) {
            throw ExportError(.notAnExport, "not a VHDX: apply writes only onto a VHDX restored or exported by `vhdx`, whose origin record says which export it holds (restore a raw image again from the exports instead)", path: imagePath)
        }
        // Standard input cannot be read twice: it is kept in a temporary file beside the image
        // (`.IMAGE.incoming.tmp-PID-N`: one a killed apply left is removed by the next apply
        // onto that image once its PID is gone). Errors name standard input, not the spool.
        var spooled: String?
        defer { if let spooled { FileSystem.removeQuietly(spooled) } }
        removeStaleTemporaries(for: imagePath + ".incoming")
        if RemoteStore.names(imagePath) {
            throw ExportError(.invalid, "apply writes into a local image; object storage holds the exports", path: imagePath)
        }
        // An incremental in object storage is spooled the same way: downloaded once (in
        // parallel ranges), read twice from the local copy, so both passes read the same bytes.
        var path = incremental
        if incremental == "-" || RemoteStore.names(incremental) {
            let tmp = temporaryPath(for: imagePath + ".incoming")
            spooled = tmp
            try Applier.spool(incremental, to: tmp)
            path = tmp
        }
        let name = incremental == "-" ? ByteSource.standardInput : incremental
        if FileIdentity(path: path) != nil, FileIdentity(path: path) == FileIdentity(path: imagePath) {
            throw ExportError(.invalid, "the incremental and the image are the same file", path: imagePath)
        }
        // Checked first, read-only: the header against the image, then every record.
        let checking = try StreamReader(path: path, name: name)
        let header = checking.header
        let resuming: Bool
        do {
            let image = try VHDXFile.open(path: imagePath)
            resuming = try admissible(header, image: image, name: name)
        }
        try StreamDecoder.forEach(checking) { _ in }

        let image = try VHDXFile.open(path: imagePath, writable: true)
        guard var origin = try OriginStore.read(image) else { throw ExportError(.notAnExport, "the image lost its origin record", path: imagePath) }
        if try admissible(header, image: image, name: name) != resuming {
            throw ExportError(.invalid, "the image changed while the incremental was being checked", path: imagePath)
        }
        origin.pending = header
        try OriginStore.write(origin, to: image)
        var summary = ApplySummary(holds: header, resumed: resuming)
        let old = image.virtualSize
        if header.virtualSize > old { try image.resize(to: header.virtualSize) }
        var done: UInt64 = 0
        // The pass that writes reads the stream the first pass checked (a file replaced between
        // them is refused; what it holds is checked again record by record as it is written).
        let writing = try StreamReader(path: path, name: name)
        guard writing.header == header else {
            throw ExportError(.invalid, "the incremental was replaced while it was being applied", path: name)
        }
        try StreamDecoder.forEach(writing) { e in
            if e.kind == .zero {
                try image.writeZeroes(at: e.offset, length: e.length)
                summary.zeroBytes += e.length
            } else {
                try image.write(e.data, at: e.offset)
                summary.dataBytes += e.length
            }
            done += e.length
            progress?(done, header.virtualSize)
        }
        if header.virtualSize < image.virtualSize {
            // Shrinking refuses to drop data: what lies past the new end is zeroed first.
            try image.writeZeroes(at: header.virtualSize, length: image.virtualSize - header.virtualSize)
            try image.resize(to: header.virtualSize)
        }
        try image.flush()
        try OriginStore.write(ImageOrigin(holds: header, pending: nil, dataWriteGUID: image.header.dataWriteGUID), to: image)
        try image.close()
        summary.seconds = Clock.now() - started
        return summary
    }

    /// Whether `header` may go onto `image`: true when it resumes an interrupted apply of
    /// itself, false for a fresh apply; the reason otherwise.
    static func admissible(_ header: StreamHeader, image: VHDXFile, name: String) throws -> Bool {
        guard let origin = try OriginStore.read(image) else {
            throw ExportError(.notAnExport, "the image was not restored or exported by this tool (it has no export origin record), so its content cannot be known to be the incremental's base", path: image.path)
        }
        if let pending = origin.pending {
            if pending.streamID == header.streamID { return true }
            throw ExportError(.interrupted, "an apply of another incremental {\(pending.streamID)} (to \(pending.targetID)) was interrupted: run that apply again first", path: image.path)
        }
        if header.sourceDiskID != origin.holds.sourceDiskID {
            throw ExportError(.otherDisk, "the incremental is of the disk {\(header.sourceDiskID)}, the image holds the disk {\(origin.holds.sourceDiskID)}", path: name)
        }
        if !header.isIncremental {
            throw ExportError(.invalid, "this is a full export: restore it into a new image (`vhdx restore`), apply takes incrementals", path: name)
        }
        if let e = StreamChain.problem(header, after: origin.holds, name: name) { throw e }
        try OriginStore.check(origin, of: image)
        return false
    }

    /// Standard input or an object into `tmp` (a new file, not renamed: only this apply reads it).
    private static func spool(_ input: String, to tmp: String) throws {
        let source = try StreamInputs.open(input)
        let storage = try FileStorage(path: tmp, mode: .create, lock: false)
        let sink = StorageSink(storage)
        while true {
            let chunk = try source.read(4 << 20)
            if chunk.isEmpty { break }
            try sink.append(chunk)
        }
    }
}
