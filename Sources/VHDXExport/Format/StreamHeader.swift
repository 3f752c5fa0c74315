import VHDXChangeTracking
import VHDXFormat

/// The body of a stream's first record: what the stream is of and what it needs underneath
/// (EXPORT-FORMAT.md §3). Also what an exported image's origin record holds.
public struct StreamHeader: Equatable, Sendable {
    /// 2: the change IDs' seal tags at 192–207. Version 1 (no tags: IDs of earlier builds) is read.
    static let version: UInt32 = 2
    /// 3: version 2 plus the stream id a consolidated full stands for at 208–223 (written only
    /// when `standsFor` is set, so every other stream stays readable by version-2 builds, and a
    /// consolidated one is refused by them as an unknown version rather than misread).
    static let consolidatedVersion: UInt32 = 3
    static let bodySize = 256

    /// Names this stream; every record repeats it.
    public var streamID: GUID
    /// The source disk's VirtualDiskId.
    public var sourceDiskID: GUID
    /// nil for a full export.
    public var baseID: ChangeID?
    /// The content the stream brings a disk to.
    public var targetID: ChangeID
    /// The stream (or exported image) this incremental was made on, when known (`--base`).
    public var baseStreamID: GUID
    public var virtualSize: UInt64
    public var logicalSectorSize: UInt32
    public var physicalSectorSize: UInt32
    /// The source's block size, which a restore copies.
    public var blockSize: UInt32
    /// Each data record lists a SHA-256 per this many bytes.
    public var digestBlock: UInt64
    /// Milliseconds since 1970-01-01 UTC.
    public var created: UInt64
    /// A consolidated full stream (`vhdx consolidate`): the stream id of the export whose
    /// content it equals (the last incremental it folded in), so an incremental made on that
    /// export follows it as it would follow that export. Zero for every other stream.
    public var standsFor: GUID = .zero

    public var isIncremental: Bool { baseID != nil }
    public var isConsolidated: Bool { standsFor != .zero }

    package func encode() -> [UInt8] {
        var w = ByteWriter(capacity: StreamHeader.bodySize)
        w.write(isConsolidated ? StreamHeader.consolidatedVersion : StreamHeader.version)
        w.write(UInt32(isIncremental ? 1 : 0))
        w.write(streamID)
        w.write(sourceDiskID)
        ChangeIDCodec.write(baseID, into: &w)
        ChangeIDCodec.write(targetID, into: &w)
        w.write(baseStreamID)
        w.write(virtualSize)
        w.write(logicalSectorSize)
        w.write(physicalSectorSize)
        w.write(blockSize)
        w.write(UInt32(0))
        w.write(digestBlock)
        w.write(created)
        w.write(baseID?.tag ?? 0)
        w.write(targetID.tag)
        if isConsolidated { w.write(standsFor) }
        w.pad(to: StreamHeader.bodySize)
        return w.bytes
    }

    package static func decode(_ bytes: [UInt8], at position: UInt64) throws(FormatError) -> StreamHeader {
        let s = "export stream header"
        var r = ByteReader(bytes, base: position, structure: s)
        guard bytes.count == bodySize else {
            throw FormatError(.inconsistent, s, field: "body length", at: position, "\(bytes.count) bytes, expected \(bodySize)")
        }
        let version = try r.readUInt32("version")
        guard (1...StreamHeader.consolidatedVersion).contains(version) else {
            throw FormatError(.unsupported, s, field: "version", at: position, "version \(version); this tool reads versions 1 to \(StreamHeader.consolidatedVersion)")
        }
        let flags = try r.readUInt32("flags")
        let id = try r.readGUID("stream id")
        let disk = try r.readGUID("source disk id")
        var base = try ChangeIDCodec.read(&r, "base change id")
        guard var target = try ChangeIDCodec.read(&r, "target change id") else {
            throw FormatError(.inconsistent, s, field: "target change id", at: position, "missing")
        }
        guard flags & ~1 == 0, (flags == 1) == (base != nil) else {
            throw FormatError(.inconsistent, s, field: "flags", at: position + 4, "flags \(flags) do not match the base change id")
        }
        let baseStream = try r.readGUID("base stream id")
        let size = try r.readUInt64("virtual size")
        let lss = try r.readUInt32("logical sector size")
        let pss = try r.readUInt32("physical sector size")
        let block = try r.readUInt32("block size")
        guard try r.readUInt32("reserved") == 0 else {
            throw FormatError(.reservedNonZero, s, field: "reserved", at: position + 172, "bytes 172-175 must be zero")
        }
        let digest = try r.readUInt64("digest block")
        let created = try r.readUInt64("created")
        // Version 1 has no tags: its bytes 192–207 are reserved (zero), which reads as tag 0.
        let baseTag = try r.readUInt64("base change id tag"), targetTag = try r.readUInt64("target change id tag")
        guard version >= 2 || (baseTag == 0 && targetTag == 0) else {
            throw FormatError(.reservedNonZero, s, field: "reserved", at: position + 192, "bytes 192-207 of a version 1 header must be zero")
        }
        guard baseTag == 0 || base != nil else {
            throw FormatError(.inconsistent, s, field: "base change id tag", at: position + 192, "a tag without a base change id")
        }
        base?.tag = baseTag
        target.tag = targetTag
        // Version 3: the consolidated full's "stands for" stream id, never zero, never on an incremental.
        var standsFor = GUID.zero
        if version == StreamHeader.consolidatedVersion {
            standsFor = try r.readGUID("stands for stream id")
            guard standsFor != .zero, base == nil, standsFor != id else {
                throw FormatError(.inconsistent, s, field: "stands for stream id", at: position + 208,
                                  "a version 3 header is a consolidated full stream naming the export it stands for (not zero, not itself, not on an incremental)")
            }
        }
        let rest = version == StreamHeader.consolidatedVersion ? 224 : 208
        guard try r.readBytes(bodySize - rest, "reserved").allSatisfy({ $0 == 0 }) else {
            throw FormatError(.reservedNonZero, s, field: "reserved", at: position + UInt64(rest), "bytes \(rest)-255 must be zero")
        }
        guard lss == 512 || lss == 4096, pss == 512 || pss == 4096 else {
            throw FormatError(.outOfRange, s, field: "sector sizes", at: position, "logical \(lss), physical \(pss): each must be 512 or 4096")
        }
        guard size > 0, size % UInt64(lss) == 0, size <= DigestBlockRule.maxVirtualSize else {
            throw FormatError(.outOfRange, s, field: "virtual size", at: position, "\(size) bytes is not a whole number of \(lss)-byte sectors up to 64 TiB")
        }
        guard block.nonzeroBitCount == 1, block >= 1 << 20, block <= 256 << 20 else {
            throw FormatError(.outOfRange, s, field: "block size", at: position, "\(block) is not a power of two from 1 MiB to 256 MiB")
        }
        if let problem = DigestBlockRule.problem(digest, virtualSize: size, sectorSize: lss) {
            throw FormatError(.outOfRange, s, field: "digest block", at: position, problem)
        }
        guard target.virtualDiskID == disk, base.map({ $0.virtualDiskID == disk }) ?? true else {
            throw FormatError(.inconsistent, s, field: "change ids", at: position, "the change IDs name another disk than the source disk id")
        }
        return StreamHeader(streamID: id, sourceDiskID: disk, baseID: base, targetID: target, baseStreamID: baseStream, virtualSize: size,
                            logicalSectorSize: lss, physicalSectorSize: pss, blockSize: block, digestBlock: digest, created: created,
                            standsFor: standsFor)
    }
}

extension StreamHeader {
    /// The header an export writes: a new stream id (random, or one the caller derived and
    /// knows to be new), and the digest block of its base (so the exports line up) while
    /// `DigestBlockRule` still allows it for the disk (which may have grown), otherwise the
    /// rule's choice from the tracking granule.
    package static func forExport(sourceDiskID: GUID, baseID: ChangeID?, targetID: ChangeID, base: StreamHeader?, virtualSize: UInt64,
                                  logicalSectorSize: UInt32, physicalSectorSize: UInt32, blockSize: UInt32, granule: UInt64,
                                  created: UInt64, streamID: GUID = .random()) -> StreamHeader {
        let inherited = base.map(\.digestBlock).flatMap {
            DigestBlockRule.problem($0, virtualSize: virtualSize, sectorSize: logicalSectorSize) == nil ? $0 : nil
        }
        let d = inherited ?? DigestBlockRule.choose(granule: granule, virtualSize: virtualSize, sectorSize: logicalSectorSize)
        return StreamHeader(streamID: streamID, sourceDiskID: sourceDiskID, baseID: baseID, targetID: targetID,
                            baseStreamID: base?.streamID ?? .zero, virtualSize: virtualSize, logicalSectorSize: logicalSectorSize,
                            physicalSectorSize: physicalSectorSize, blockSize: blockSize, digestBlock: d, created: created)
    }
}
