#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX
import VHDXChangeTracking
import VHDXFormat

/// What to export from.
public struct ExportOptions: Sendable {
    /// The previous export (a stream, or an exported `.vhdx`/`.avhdx`): an incremental from
    /// the change ID it holds, on top of it.
    public var base: String?
    /// An incremental from this change ID (when there is no previous export to name).
    public var since: ChangeID?
    /// Replace an existing output.
    public var overwrite = false
    public init(base: String? = nil, since: ChangeID? = nil, overwrite: Bool = false) {
        self.base = base
        self.since = since
        self.overwrite = overwrite
    }
}

/// What an export did.
public struct ExportSummary: Sendable {
    public enum Form: String, Sendable {
        case stream, vhdx, avhdx
    }
    public var form: Form
    public var header: StreamHeader
    /// Bytes read from the source.
    public var scannedBytes: UInt64 = 0
    /// Bytes the export carries as data, and as zero ranges.
    public var dataBytes: UInt64 = 0
    public var zeroBytes: UInt64 = 0
    /// The output's size in bytes.
    public var writtenBytes: UInt64 = 0
    public var seconds: Double = 0
    /// An upload to object storage: parts sent, and parts an interrupted earlier run had stored.
    public var uploadParts: ObjectParts?
    /// Output bytes per data byte (a stream's compression).
    public var ratio: Double { dataBytes == 0 ? 0 : Double(writtenBytes) / Double(dataBytes) }
}

/// `vhdx export`: a full or incremental export of a tracked disk, chain or VHD Set at a new
/// change ID, as a stream (any name, `-` for standard output), a full `.vhdx` or a
/// differencing `.avhdx` over the previous export.
public enum Exporter {
    public typealias Progress = (_ done: UInt64, _ total: UInt64) -> Void

    /// Throws `.needsFull` when tracking cannot answer from the base (take a full export),
    /// `.tracking` when the source is not tracked, `.engine` when a disk cannot be opened or read.
    public static func export(_ source: String, to output: String, options: ExportOptions = ExportOptions(),
                              progress: Progress? = nil) throws(ExportError) -> ExportSummary {
        try ExportError.boundary { try exporting(source, to: output, options: options, progress: progress) }
    }

    static func exporting(_ source: String, to output: String, options: ExportOptions,
                          progress: Progress?) throws -> ExportSummary {
        let started = Clock.now()
        let form = form(of: output)
        if options.base != nil && options.since != nil {
            throw ExportError(.invalid, "give the previous export (base) or a change ID (since), not both")
        }
        let base = try options.base.map { try OriginStore.identity(of: $0) }
        let since = options.since ?? base?.targetID
        if form == .vhdx, since != nil {
            throw ExportError(.invalid, "an incremental export goes to a differencing .avhdx over the previous export, or to a stream", path: output)
        }
        let target: Target
        switch form {
        case .stream: target = .stream
        case .vhdx: target = .vhdx
        case .avhdx:
            guard let parent = options.base, try OriginStore.looksLikeVHDX(parent) else {
                throw ExportError(.invalid, "an .avhdx export is a differencing image over the previous export: name that .vhdx or .avhdx as the base", path: output)
            }
            target = .avhdx(parent: parent)
        }
        if RemoteStore.names(output) {
            // Object storage holds streams; an image output is a local file.
            guard form == .stream else {
                throw ExportError(.invalid, "an export to object storage is a stream: name the object without .vhdx/.avhdx, or write the image to a local file", path: output)
            }
            if options.base == output { throw ExportError(.invalid, "refusing to write the export over one of its own inputs", path: output) }
            if !options.overwrite, try RemoteStore.exists(output) {
                throw ExportError(.invalid, "already exists (replacing it must be asked for)", path: output)
            }
        } else {
            try refuseExisting(output, overwrite: options.overwrite)
            if output != "-" { try refuseNonRegularOutput(output) }
            try requireWritableFolder(of: output)
        }

        let point: ConsistentPoint
        do {
            point = try ConsistentPoint.take(source, since: since) { inputs in
                if let out = FileIdentity(path: output), (inputs + [options.base].compactMap { $0 }).contains(where: { FileIdentity(path: $0) == out }) {
                    throw ExportError(.invalid, "refusing to write the export over one of its own inputs", path: output)
                }
            }
        } catch let e as ChangeTrackingError where base != nil && e.reason == .otherDisk {
            // The base names another disk: the wrong base, not a reason to take a full export.
            throw ExportError(.otherDisk, "the base is an export of another disk than the source: \(e.message)", path: options.base)
        } catch let e as ChangeTrackingError where e.reason != .engine {
            // An engine error tracking carries is the disk's failure, not a reason to take a full export.
            guard let since else { throw e }
            throw ExportError(.needsFull, "change tracking cannot answer from \(since): \(e.reason.rawValue): \(e.message). Take a full export", path: source)
        }
        let summary: ExportSummary
        do {
            summary = try run(point, source: source, output: output, target: target, base: base, baseImage: options.base,
                              since: since, overwrite: options.overwrite, started: started, progress: progress)
        } catch {
            // Sealed but not published (the output's name was taken meanwhile, a full disk at
            // the rename): the seal is taken back, so a failed export costs no history.
            point.undoSeal()
            try? point.release()
            throw error
        }
        // Published: the seal stays, whatever happens now (a failure to close the source is
        // reported, but the output holds the sealed ID and the next incremental starts from it).
        try point.release()
        return summary
    }

    /// The output's folder must exist and be writable before anything is sealed.
    static func requireWritableFolder(of output: String) throws(ExportError) {
        guard output != "-" else { return }
        let dir = FileSystem.directory(of: output)
        var st = stat()
        guard stat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw ExportError(.invalid, "the output's folder \(dir) does not exist", path: output)
        }
        guard access(dir, W_OK) == 0 else {
            throw ExportError(.invalid, "the output's folder \(dir) is not writable: \(String(cString: strerror(errno)))", path: output)
        }
    }

    static func form(of output: String) -> ExportSummary.Form {
        let lower = output.lowercased()
        if lower.hasSuffix(".vhdx") { return .vhdx }
        if lower.hasSuffix(".avhdx") { return .avhdx }
        return .stream
    }

    /// The output's form; an `.avhdx` carries the image it is a child of (the base, checked to
    /// be a VHDX before anything is held).
    private enum Target {
        case stream, vhdx
        case avhdx(parent: String)

        var form: ExportSummary.Form {
            switch self {
            case .stream: .stream
            case .vhdx: .vhdx
            case .avhdx: .avhdx
            }
        }
    }

    private static func run(_ point: ConsistentPoint, source: String, output: String, target: Target, base: StreamHeader?,
                            baseImage: String?, since: ChangeID?, overwrite: Bool, started: Double, progress: Progress?) throws -> ExportSummary {
        let image = point.image
        if let base, base.sourceDiskID != image.layout.virtualDiskID {
            throw ExportError(.otherDisk, "the base is an export of the disk {\(base.sourceDiskID)}, the source is {\(image.layout.virtualDiskID)}", path: baseImage)
        }
        // An object's upload begins first: the stream is named after it (see `beginStream`).
        // (An object output is always a stream: `exporting` refused the image forms.)
        let object = RemoteStore.names(output) ? try ObjectSink(output) : nil
        let header: StreamHeader
        do {
            header = StreamHeader.forExport(sourceDiskID: image.layout.virtualDiskID, baseID: since, targetID: point.targetID, base: base,
                                            virtualSize: image.virtualSize, logicalSectorSize: image.logicalSectorSize,
                                            physicalSectorSize: image.physicalSectorSize, blockSize: UInt32(image.blockSize),
                                            granule: point.granule, created: UInt64(Clock.wall() * 1000),
                                            streamID: try object?.beginStream() ?? .random())
        } catch {
            object?.abandon()
            throw error
        }
        let d = header.digestBlock
        var summary = ExportSummary(form: target.form, header: header)
        // A full .vhdx copies the chain's data extents as they are; the other forms read a plan.
        func reader() throws -> SourceReader {
            let plan = if let since {
                ExportPlan.incremental(try point.changes(since: since), digestBlock: d, size: image.virtualSize, baseSize: base?.virtualSize)
            } else { try ExportPlan.full(image, digestBlock: d) }
            return SourceReader(image: image, plan: plan, digestBlock: d, progress: progress)
        }
        switch target {
        case .stream:
            let r: SourceReader
            do { r = try reader() } catch {
                object?.abandon()
                throw error
            }
            try writeStream(r, header: header, output: output, object: object, overwrite: overwrite, seal: point.seal, summary: &summary)
            summary.scannedBytes = r.scanned
        case .vhdx:
            try writeImage(point, header: header, output: output, overwrite: overwrite, progress: progress, summary: &summary)
        case .avhdx(let parent):
            let r = try reader()
            try writeChild(r, header: header, parent: parent, output: output, overwrite: overwrite, seal: point.seal, summary: &summary)
            summary.scannedBytes = r.scanned
        }
        summary.seconds = Clock.now() - started
        return summary
    }

    /// `seal` runs once the stream is complete on disk (before it is renamed into place); on
    /// standard output, before the trailer, so a failed seal leaves a stream every reader
    /// refuses as truncated.
    private static func writeStream(_ reader: SourceReader, header: StreamHeader, output: String, object: ObjectSink?, overwrite: Bool,
                                    seal: () throws(VHDXError) -> Void, summary: inout ExportSummary) throws {
        /// `storage`: the output file (sealed once it is complete and flushed); nil for a pipe
        /// (sealed before the trailer) and for object storage (sealed by `writeObject` before
        /// the upload completes).
        func body(_ sink: ByteSink, storage: FileStorage?, remote: Bool = false) throws(VHDXError) -> StreamTrailer {
            let writer = try StreamWriter(sink: sink, header: header)
            let d = header.digestBlock
            let work = OrderedWork<SourceReader.Item, [EncodedRecord]> { item in
                guard let data = item.data else { return [.zero(offset: item.offset, length: item.length)] }
                return EncodedRecord.encode(data, at: item.offset, digestBlock: d, compress: true)
            }
            try work.run(produce: { (n) throws(VHDXError) in try reader.next(n) },
                         consume: { (records) throws(VHDXError) in for r in records { try writer.append(r) } })
            if storage == nil && !remote { try seal() }
            let t = try writer.finish()
            if let storage {
                try storage.synchronize()
                try seal()
            }
            if remote {
                // Every byte is with the upload (the last part still in memory): the seal, then
                // the publish, so a failed seal publishes nothing and a failed publish undoes it.
                try sink.drain()
                try seal()
            }
            summary.writtenBytes = writer.written
            return t
        }
        let t: StreamTrailer
        if output == "-" {
            t = try body(BackgroundSink(DescriptorSink(fd: 1, name: "<stdout>")), storage: nil)
        } else if let object {
            t = try writeObject(object, body: body)
            summary.uploadParts = object.parts
        } else {
            var result = StreamTrailer()
            try writeAtomically(output, overwrite: overwrite) { (storage) throws(VHDXError) in
                result = try body(BackgroundSink(StorageSink(storage)), storage: storage)
            }
            t = result
        }
        summary.dataBytes = t.dataBytes
        summary.zeroBytes = t.zeroBytes
    }

    /// A stream to object storage: uploaded in parts as it is made, published whole by
    /// completing the upload once `body` has sealed it; any failure before that abandons the
    /// upload, so nothing appears under the key.
    private static func writeObject(_ sink: ObjectSink,
                                    body: (ByteSink, FileStorage?, Bool) throws(VHDXError) -> StreamTrailer) throws -> StreamTrailer {
        do {
            let t = try body(BackgroundSink(sink), nil, true)
            try sink.publish()
            return t
        } catch {
            sink.abandon()
            throw error
        }
    }

    /// A full export as a VHDX: each data extent is copied from its layer's file into a block
    /// of the new image in the kernel where it can (`copy_file_range`; a reflink on XFS and
    /// btrfs), like `cp`; nothing but the chain's data is touched.
    private static func writeImage(_ point: ConsistentPoint, header: StreamHeader, output: String, overwrite: Bool,
                                   progress: Progress?, summary: inout ExportSummary) throws {
        // Sealed once the image is complete on disk, before it is renamed into place.
        var o = CreateOptions(virtualSize: header.virtualSize)
        o.blockSize = header.blockSize
        o.logicalSectorSize = header.logicalSectorSize
        o.physicalSectorSize = header.physicalSectorSize
        o.virtualDiskID = header.sourceDiskID
        try writeAtomically(output, overwrite: overwrite) { (storage) throws(VHDXError) in
            let bulk = try BulkImageWriter(storage: storage, options: o)
            var offload = CopyOffload()
            let pacer = WritebackPacer(storage)
            summary.dataBytes = try DataExtentCopier.copy(point.image, to: storage, place: { (v, n) throws(VHDXError) in
                pacer.wrote(n)
                return try bulk.place(at: v, length: n)
            }, offload: &offload, progress: progress)
            bulk.addRegion(ImageOrigin.regionGUID, bytes: ImageOrigin(holds: header, pending: nil, dataWriteGUID: bulk.dataWriteGUID).encode())
            try bulk.finish()
            summary.writtenBytes = try storage.size()
            try storage.synchronize()
            try point.seal()
        }
        summary.scannedBytes = summary.dataBytes
        summary.zeroBytes = header.virtualSize - summary.dataBytes
    }

    private static func writeChild(_ reader: SourceReader, header: StreamHeader, parent: String, output: String, overwrite: Bool,
                                   seal: () throws(VHDXError) -> Void, summary: inout ExportSummary) throws {
        let parentImage = try VHDXFile.openFile(path: parent)
        guard header.virtualSize >= parentImage.virtualSize else {
            throw ExportError(.invalid, "the source shrank to \(header.virtualSize) bytes since the base (\(parentImage.virtualSize)); a differencing image cannot be smaller than its parent: export a stream or a new full .vhdx", path: output)
        }
        let tmp = temporaryPath(for: output)
        do {
            var o = ChildOptions()
            o.virtualSize = header.virtualSize
            try VHDXCreator.createChild(path: tmp, parentPath: parent, options: o)
            do {
                let child = try VHDXFile.openFile(path: tmp, writable: true)
                try reader.forEach { (offset, data) throws(VHDXError) in
                    guard let data else { return }
                    // Zeros are written as data: some readers (libvhdi) read a child's ZERO blocks from its parent.
                    try child.write(data, at: offset)
                    summary.dataBytes += UInt64(data.count)
                }
                try child.flush()
                try OriginStore.write(ImageOrigin(holds: header, pending: nil, dataWriteGUID: child.header.dataWriteGUID), to: child)
                try child.close()
                summary.writtenBytes = try child.fileSize()
            }
            try seal()
            try publish(tmp, as: output, overwrite: overwrite)
        } catch {
            FileSystem.removeQuietly(tmp)
            throw error
        }
    }

    static func refuseExisting(_ output: String, overwrite: Bool) throws(ExportError) {
        guard output != "-", !overwrite else { return }
        var st = stat()
        if stat(output, &st) == 0 {
            throw ExportError(.invalid, "already exists (replacing it must be asked for)", path: output)
        }
    }
}
