import VHDXChangeTracking
import VHDXFormat

/// Bytes ⇄ `SetRecord` for one copy (SET-FORMAT.md §2). Decoding trusts nothing: every count,
/// length and string is bounded before use, unknown flags and non-zero reserved fields are
/// refused, and the record's own structure (ids, parents, paths) is checked as a whole.
public enum SetRecordCodec {
    static let structure = "set file"

    public static func encode(_ r: SetRecord) -> [UInt8] { encode(r, majorVersion: SetFileLayout.majorVersion) }

    /// `majorVersion` 1 writes the layout of earlier builds (change IDs without their tag):
    /// only for the tests that show such files are still read.
    package static func encode(_ r: SetRecord, majorVersion: UInt16) -> [UInt8] {
        let tagged = majorVersion >= 2
        var w = ByteWriter(capacity: 4096)
        w.write(SetFileLayout.signature)
        w.write(UInt32(0))  // checksum, set below
        w.write(majorVersion)
        w.write(SetFileLayout.minorVersion)
        w.write(r.sequence)
        w.write(UInt32(0))  // length, set below
        w.write(UInt16(r.snapshots.count))
        w.write(UInt16(r.aliases.count))
        w.write(UInt16(r.unlinkQueue.count))
        w.write(r.pending?.kind.rawValue ?? 0)
        w.write(r.pending?.flags ?? 0)
        w.write(UInt32(0))
        w.write(r.setID)
        w.write(r.virtualDiskID)
        w.write(r.leafParent)
        w.write(r.pending?.snapshot ?? .zero)
        w.write(r.created)
        w.writeZeros(16)
        for s in [r.defaultFolder, r.leafPath, r.pending?.newPath ?? ""] { writeString(&w, s) }
        for e in r.snapshots {
            w.write(e.id)
            w.write(e.parent)
            w.write(e.frozenDataWriteGUID)
            w.write(e.created)
            w.write(e.kind.rawValue)
            w.write(e.flags)
            writeChangeID(&w, e.changeID, tagged: tagged)
            w.write(UInt16(e.path.utf8.count))
            w.write(UInt16(0))
            w.write(Array(e.path.utf8))
        }
        for a in r.aliases {
            w.write(a.trackingID)
            writeChangeID(&w, a.target, tagged: tagged)
        }
        for p in r.unlinkQueue { writeString(&w, p) }
        w.pad(to: (w.bytes.count + 7) / 8 * 8)
        var bytes = w.bytes
        bytes.replaceSubrange(24..<28, with: le32(UInt32(bytes.count)))
        bytes.replaceSubrange(8..<12, with: le32(CRC32C.checksum(bytes)))
        return bytes
    }

    /// The copy's length as its header states it (bounded), read from its first 28 bytes, so
    /// the caller knows how much to read.
    public static func statedLength(_ head: [UInt8], at offset: UInt64) throws(FormatError) -> Int {
        var r = ByteReader(head, base: offset, structure: structure)
        try r.expectSignature(SetFileLayout.signature)
        try r.skip(16, "header")
        let length = Int(try r.readUInt32("length"))
        guard length >= SetFileLayout.headerSize, length <= SetFileLayout.slotSize, length % 8 == 0 else {
            throw FormatError(.outOfRange, structure, field: "length", at: offset + 24,
                              "\(length) is not a multiple of 8 between \(SetFileLayout.headerSize) and \(SetFileLayout.slotSize)")
        }
        return length
    }

    public static func decode(_ bytes: [UInt8], at offset: UInt64) throws(FormatError) -> SetRecord {
        let length = try statedLength(Array(bytes.prefix(28)), at: offset)
        guard bytes.count >= length else {
            throw FormatError(.truncated, structure, at: offset, "the copy states \(length) bytes, \(bytes.count) are there")
        }
        let copy = Array(bytes[0..<length])
        let stored = UInt32(copy[8]) | UInt32(copy[9]) << 8 | UInt32(copy[10]) << 16 | UInt32(copy[11]) << 24
        let actual = CRC32C.checksum(copy, zeroingFieldAt: SetFileLayout.checksumOffset)
        guard stored == actual else {
            throw FormatError(.badChecksum, structure, field: "checksum", at: offset + 8,
                              "stored \(String(stored, radix: 16)), computed \(String(actual, radix: 16)) (a torn or damaged copy)")
        }
        var r = ByteReader(copy, base: offset, structure: structure)
        try r.skip(12, "signature")
        let major = try r.readUInt16("major version")
        _ = try r.readUInt16("minor version")  // newer minors only add what older readers may ignore
        guard SetFileLayout.readableMajorVersions.contains(major) else {
            throw FormatError(.unsupported, structure, field: "major version", at: offset + 12, "version \(major) (this build reads \(SetFileLayout.readableMajorVersions.lowerBound) to \(SetFileLayout.readableMajorVersions.upperBound))")
        }
        let tagged = major >= 2
        let sequence = try r.readUInt64("sequence")
        _ = try r.readUInt32("length")
        let nSnap = Int(try r.readUInt16("snapshot count"))
        let nAlias = Int(try r.readUInt16("alias count"))
        let nUnlink = Int(try r.readUInt16("unlink count"))
        let pendingKind = try r.readUInt8("pending kind")
        let pendingFlags = try r.readUInt8("pending flags")
        try zero(&r, 4, "reserved")
        for (n, limit, field) in [(nSnap, SetFileLayout.maxSnapshots, "snapshot count"), (nAlias, SetFileLayout.maxAliases, "alias count"),
                                  (nUnlink, SetFileLayout.maxUnlinkQueue, "unlink count")] where n > limit {
            throw FormatError(.outOfRange, structure, field: field, at: offset + 28, "\(n) is over the limit of \(limit)")
        }
        let setID = try r.readGUID("set id")
        let diskID = try r.readGUID("virtual disk id")
        let leafParent = try r.readGUID("leaf parent")
        let pendingSnapshot = try r.readGUID("pending snapshot")
        let created = try r.readUInt64("creation time")
        try zero(&r, 16, "reserved")
        let folder = try readString(&r, "default folder", allowEmpty: true)
        let leaf = try readString(&r, "leaf path")
        let pendingPath = try readString(&r, "pending path", allowEmpty: true)
        var record = SetRecord(setID: setID, virtualDiskID: diskID, created: created, defaultFolder: folder, leafPath: leaf, leafParent: leafParent)
        record.sequence = sequence
        if pendingKind != 0 {
            guard let kind = PendingOperation.Kind(rawValue: pendingKind), pendingFlags & ~PendingOperation.Flag.known == 0 else {
                throw FormatError(.outOfRange, structure, field: "pending kind", at: offset + 34, "unknown operation \(pendingKind) or flags \(pendingFlags)")
            }
            record.pending = PendingOperation(kind: kind, flags: pendingFlags, snapshot: pendingSnapshot, newPath: pendingPath)
        } else if pendingFlags != 0 || !pendingSnapshot.isZero || !pendingPath.isEmpty {
            throw FormatError(.reservedNonZero, structure, field: "pending", at: offset + 34, "fields of a pending operation are set, but none is recorded")
        }
        for _ in 0..<nSnap { record.snapshots.append(try readEntry(&r, tagged: tagged)) }
        for _ in 0..<nAlias {
            let t = try r.readGUID("alias tracking id")
            guard let target = try readChangeID(&r, "alias target", tagged: tagged) else {
                throw FormatError(.outOfRange, structure, field: "alias target", at: r.fileOffset, "an alias without a target")
            }
            record.aliases.append(TrackingAlias(trackingID: t, target: target))
        }
        for _ in 0..<nUnlink { record.unlinkQueue.append(try readString(&r, "unlink path")) }
        guard copy[r.position...].allSatisfy({ $0 == 0 }), r.remaining < 8 else {
            throw FormatError(.inconsistent, structure, field: "padding", at: r.fileOffset, "\(r.remaining) bytes after the last field are not the zero padding")
        }
        try SetRecordRules.check(record, at: offset)
        return record
    }

    // MARK: - Pieces

    static func writeString(_ w: inout ByteWriter, _ s: String) {
        w.write(UInt16(s.utf8.count))
        w.write(Array(s.utf8))
    }

    static func readString(_ r: inout ByteReader, _ field: String, allowEmpty: Bool = false) throws(FormatError) -> String {
        let at = r.fileOffset
        let n = Int(try r.readUInt16("\(field) length"))
        guard n <= SetFileLayout.maxPathBytes else {
            throw FormatError(.outOfRange, structure, field: field, at: at, "\(n) bytes, over the limit of \(SetFileLayout.maxPathBytes)")
        }
        let bytes = try r.readBytes(n, field)
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw FormatError(.outOfRange, structure, field: field, at: at, "not valid UTF-8")
        }
        try SetPath.check(s, field: field, allowEmpty: allowEmpty, at: at)
        return s
    }

    static func writeChangeID(_ w: inout ByteWriter, _ id: ChangeID?, tagged: Bool) {
        w.write(id?.virtualDiskID ?? .zero)
        w.write(id?.trackingID ?? .zero)
        w.write(id?.generation ?? 0)
        w.write(id?.epoch ?? 0)
        if tagged { w.write(id?.tag ?? 0) }
    }

    /// `tagged`: version 2 and later; version 1 IDs have no tag (0).
    static func readChangeID(_ r: inout ByteReader, _ field: String, tagged: Bool) throws(FormatError) -> ChangeID? {
        let at = r.fileOffset
        let disk = try r.readGUID("\(field) disk")
        let tracking = try r.readGUID("\(field) tracking id")
        let generation = try r.readUInt32("\(field) generation")
        let epoch = try r.readUInt64("\(field) epoch")
        let tag = tagged ? try r.readUInt64("\(field) tag") : 0
        if tracking.isZero {
            guard disk.isZero, generation == 0, epoch == 0, tag == 0 else {
                throw FormatError(.inconsistent, structure, field: field, at: at, "a change ID without a tracking id")
            }
            return nil
        }
        return ChangeID(virtualDiskID: disk, trackingID: tracking, generation: generation, epoch: epoch, tag: tag)
    }

    static func readEntry(_ r: inout ByteReader, tagged: Bool) throws(FormatError) -> SnapshotEntry {
        let at = r.fileOffset
        let id = try r.readGUID("snapshot id")
        let parent = try r.readGUID("snapshot parent")
        let dwg = try r.readGUID("snapshot data write guid")
        let created = try r.readUInt64("snapshot creation time")
        let rawKind = try r.readUInt32("snapshot type")
        let flags = try r.readUInt32("snapshot flags")
        guard let kind = SnapshotEntry.Kind(rawValue: rawKind) else {
            throw FormatError(.outOfRange, structure, field: "snapshot type", at: at + 56, "unknown type \(rawKind)")
        }
        guard flags & ~SnapshotEntry.Flag.known == 0 else {
            throw FormatError(.outOfRange, structure, field: "snapshot flags", at: at + 60, "unknown flags 0x\(String(flags, radix: 16))")
        }
        let changeID = try readChangeID(&r, "snapshot change id", tagged: tagged)
        let pathAt = at + (tagged ? 120 : 112)
        let n = Int(try r.readUInt16("snapshot path length"))
        try zero(&r, 2, "snapshot reserved")
        guard n <= SetFileLayout.maxPathBytes else {
            throw FormatError(.outOfRange, structure, field: "snapshot path length", at: pathAt - 4, "\(n) bytes, over the limit of \(SetFileLayout.maxPathBytes)")
        }
        let bytes = try r.readBytes(n, "snapshot path")
        guard let path = String(validating: bytes, as: UTF8.self) else {
            throw FormatError(.outOfRange, structure, field: "snapshot path", at: pathAt, "not valid UTF-8")
        }
        try SetPath.check(path, field: "snapshot path", allowEmpty: true, at: pathAt)
        return SnapshotEntry(id: id, parent: parent, frozenDataWriteGUID: dwg, created: created, kind: kind, flags: flags, changeID: changeID, path: path)
    }

    static func zero(_ r: inout ByteReader, _ n: Int, _ field: String) throws(FormatError) {
        let at = r.fileOffset
        guard try r.readBytes(n, field).allSatisfy({ $0 == 0 }) else {
            throw FormatError(.reservedNonZero, structure, field: field, at: at, "reserved bytes are not zero")
        }
    }

    static func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
}
