#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX
import VHDXFormat

/// What a restore did.
public struct RestoreSummary: Sendable {
    /// The export the image now holds.
    public var holds: StreamHeader
    public var inputs: Int
    /// Bytes of data and of zero ranges the exports carried.
    public var dataBytes: UInt64 = 0
    public var zeroBytes: UInt64 = 0
    public var writtenBytes: UInt64 = 0
    public var seconds: Double = 0
}

/// `vhdx restore`: a new image (VHDX, or raw for any other name) from a full export and its
/// incrementals (streams) or from an exported chain's top, built as a temporary file and
/// renamed into place. Every record's CRC-32C and every block's SHA-256 is checked before its
/// bytes are written; an input that fails leaves no output behind.
public enum Restorer {
    public static func restore(to output: String, from inputs: [String], fixed: Bool = false, overwrite: Bool = false,
                               progress: Exporter.Progress? = nil) throws(ExportError) -> RestoreSummary {
        try ExportError.boundary { try restoring(to: output, from: inputs, fixed: fixed, overwrite: overwrite, progress: progress) }
    }

    static func restoring(to output: String, from inputs: [String], fixed: Bool, overwrite: Bool,
                          progress: Exporter.Progress?) throws -> RestoreSummary {
        let started = Clock.now()
        guard let first = inputs.first else { throw ExportError(.invalid, "no export given") }
        if RemoteStore.names(output) {
            throw ExportError(.invalid, "a restore writes a local image (.vhdx or raw); object storage holds the exports", path: output)
        }
        let out = FileIdentity(path: output)
        if let out, inputs.contains(where: { FileIdentity(path: $0) == out }) {
            throw ExportError(.invalid, "refusing to restore over one of the inputs", path: output)
        }
        try Exporter.refuseExisting(output, overwrite: overwrite)
        let asVHDX = output.lowercased().hasSuffix(".vhdx")
        var summary: RestoreSummary
        if try OriginStore.looksLikeVHDX(first) {
            guard inputs.count == 1 else {
                throw ExportError(.invalid, "an exported chain is restored from its top image alone (its parents are found through it)", path: first)
            }
            summary = try fromChain(first, output: output, asVHDX: asVHDX, fixed: fixed, overwrite: overwrite, progress: progress)
        } else {
            summary = try fromStreams(inputs, output: output, asVHDX: asVHDX, fixed: fixed, overwrite: overwrite, progress: progress)
        }
        summary.seconds = Clock.now() - started
        return summary
    }

    static func createOptions(_ h: StreamHeader, fixed: Bool) -> CreateOptions {
        var o = CreateOptions(virtualSize: h.virtualSize)
        o.blockSize = h.blockSize
        o.logicalSectorSize = h.logicalSectorSize
        o.physicalSectorSize = h.physicalSectorSize
        o.virtualDiskID = h.sourceDiskID
        o.fixed = fixed
        return o
    }

    /// Builds the output with `fill`, which writes the content into the sink it is given.
    static func build(_ output: String, holds: StreamHeader, asVHDX: Bool, fixed: Bool, overwrite: Bool,
                      _ fill: (RestoreSink, _ startOverwriting: () -> Void) throws -> Void) throws -> UInt64 {
        var written: UInt64 = 0
        do {
        try writeAtomically(output, overwrite: overwrite) { (storage) throws(VHDXError) in
            do {
                if asVHDX {
                    let bulk = try BulkImageWriter(storage: storage, options: createOptions(holds, fixed: fixed))
                    try fill(bulk, {})
                    bulk.addRegion(ImageOrigin.regionGUID, bytes: ImageOrigin(holds: holds, pending: nil, dataWriteGUID: bulk.dataWriteGUID).encode())
                    try bulk.finish()
                } else {
                    let raw = try RawSink(storage: storage, size: holds.virtualSize)
                    try fill(raw, { raw.overwriting = true })
                }
                written = try storage.size()
            } catch let e as VHDXError {
                throw e
            } catch {
                // Not an engine error (a damaged input): abort the build (its cause is rethrown below).
                throw VHDXError(.invalidArgument, "\(error)", path: output, cause: error)
            }
        }
        } catch {
            throw unwrap(error)
        }
        return written
    }

    private static func fromStreams(_ paths: [String], output: String, asVHDX: Bool, fixed: Bool, overwrite: Bool,
                                    progress: Exporter.Progress?) throws -> RestoreSummary {
        let readers = try StreamChain.open(paths)
        let final = readers.last!.header
        var summary = RestoreSummary(holds: final, inputs: readers.count)
        let total = readers.reduce(UInt64(0)) { $0 + $1.header.virtualSize }
        var done: UInt64 = 0
        summary.writtenBytes = try build(output, holds: final, asVHDX: asVHDX, fixed: fixed, overwrite: overwrite) { target, startOverwriting in
            let sink = BackgroundRestoreSink(target)
            var size = readers[0].header.virtualSize
            for (k, reader) in readers.enumerated() {
                if k == 1 {
                    try sink.drain()
                    startOverwriting()
                }
                // A shrink cut what lay past the new end; the disk reads zeros there if it grows back.
                let s = reader.header.virtualSize
                if s < size, s < final.virtualSize { try sink.zero(at: s, length: min(size, final.virtualSize) - s) }
                size = s
                try StreamDecoder.forEach(reader) { e in
                    guard e.offset < final.virtualSize else { return }
                    let n = min(e.length, final.virtualSize - e.offset)
                    if e.kind == .zero {
                        try sink.zero(at: e.offset, length: n)
                        summary.zeroBytes += n
                    } else {
                        try sink.write(e.data, count: Int(n), at: e.offset)
                        summary.dataBytes += n
                    }
                    done += e.length
                    progress?(done, total)
                }
            }
            try sink.drain()
        }
        return summary
    }

    private static func fromChain(_ top: String, output: String, asVHDX: Bool, fixed: Bool, overwrite: Bool,
                                  progress: Exporter.Progress?) throws -> RestoreSummary {
        let image = try VHDXFile.open(path: top)
        let holds = try ChainOrigin.verify(image)
        var summary = RestoreSummary(holds: holds, inputs: image.chain.count)
        summary.writtenBytes = try build(output, holds: holds, asVHDX: asVHDX, fixed: fixed, overwrite: overwrite) { sink, _ in
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            try image.forEachResolvedExtent { (e) throws(VHDXError) in
                guard e.kind == .data || e.kind == .partial else { return }
                var at = e.virtualOffset
                while at < e.end {
                    let n = Int(min(UInt64(buffer.count), e.end - at))
                    try typed { try buffer.withUnsafeMutableBytes { b in
                        let piece = UnsafeMutableRawBufferPointer(rebasing: b[0..<n])
                        try image.read(into: piece, at: at)
                        try sink.write(UnsafeRawBufferPointer(piece), at: at)
                    } }
                    at += UInt64(n)
                    summary.dataBytes += UInt64(n)
                    progress?(at, image.virtualSize)
                }
            }
        }
        summary.zeroBytes = holds.virtualSize - summary.dataBytes
        return summary
    }

    /// The input's own error when the build stopped on one (a damaged stream), not the wrapper.
    static func unwrap(_ e: VHDXError) -> any Error {
        if let inner = e.cause, !(inner is Errno), !(inner is VHDXError) { return inner }
        return e
    }
}
