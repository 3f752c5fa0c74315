import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXFormat
import VHDXSets
import VHDXTestSupport

/// The set file's bytes: round trips, and a corruption corpus (every byte of a copy changed and
/// re-checksummed, absurd counts and lengths, hostile paths, broken structure, truncation at
/// every length) that must give a clear error or a finding — never a crash, never a write.
@Suite("VHD Set file format")
struct SetFormatTests {
    static func sample(snapshots: Int = 3, aliases: Int = 1, pending: Bool = true) -> SetRecord {
        var rng = SplitMix(seed: 42)
        var r = SetRecord(setID: .random(using: &rng), virtualDiskID: .random(using: &rng), created: 1_764_633_600_000,
                          defaultFolder: "backing", leafPath: "backing/leaf.avhdx", leafParent: .zero)
        var parent = GUID.zero
        for i in 0..<snapshots {
            let id = GUID.random(using: &rng)
            let cid = ChangeID(virtualDiskID: r.virtualDiskID, trackingID: .random(using: &rng), generation: UInt32(i), epoch: UInt64(i + 1),
                               tag: i == 1 ? 0 : rng.next() | 1)
            r.snapshots.append(SnapshotEntry(id: id, parent: parent, frozenDataWriteGUID: .random(using: &rng), created: 1_764_633_600_000 + UInt64(i),
                                             kind: i % 2 == 0 ? .checkpoint : .keptLeaf, flags: SnapshotEntry.Flag.valid,
                                             changeID: cid, path: "backing/snap \(i) ✓.avhdx"))
            parent = id
        }
        if snapshots > 0 {
            r.leafParent = parent
            r.snapshots.append(SnapshotEntry(id: .random(using: &rng), parent: r.snapshots[0].id, frozenDataWriteGUID: .zero, created: 5,
                                             kind: .checkpoint, flags: SnapshotEntry.Flag.valid | SnapshotEntry.Flag.referenceOnly,
                                             changeID: r.snapshots[0].changeID, path: ""))
        }
        for _ in 0..<aliases {
            r.aliases.append(TrackingAlias(trackingID: .random(using: &rng), target: r.snapshots.first?.changeID
                                           ?? ChangeID(virtualDiskID: r.virtualDiskID, trackingID: .random(using: &rng), generation: 0, epoch: 1)))
        }
        if pending { r.pending = PendingOperation(kind: .checkpoint, snapshot: .random(using: &rng), newPath: "backing/new.avhdx") }
        r.unlinkQueue = ["old.avhdx"]
        r.sequence = 9
        return r
    }

    @Test("records round-trip through their bytes")
    func roundTrip() throws {
        for r in [SetFormatTests.sample(), SetFormatTests.sample(snapshots: 0, aliases: 0, pending: false),
                  SetFormatTests.sample(snapshots: 40, aliases: 20)] {
            let bytes = SetRecordCodec.encode(r)
            #expect(bytes.count % 8 == 0 && bytes.starts(with: Array("swvhdset".utf8)))
            #expect(try SetRecordCodec.decode(bytes, at: 0) == r)
        }
        // A pending relink (kind 4) names a snapshot with a file and nothing else.
        var relinking = SetFormatTests.sample()
        relinking.pending = PendingOperation(kind: .relink, snapshot: relinking.snapshots[0].id)
        #expect(try SetRecordCodec.decode(SetRecordCodec.encode(relinking), at: 0) == relinking)
    }

    @Test("version 1 files (change IDs without tags, from earlier builds) are still read, their IDs untagged")
    func readsVersion1() throws {
        let r = SetFormatTests.sample(snapshots: 5, aliases: 3)
        let v1 = SetRecordCodec.encode(r, majorVersion: 1)
        #expect(v1[12] == 1 && v1.count < SetRecordCodec.encode(r).count)
        var untagged = r
        for i in untagged.snapshots.indices { untagged.snapshots[i].changeID?.tag = 0 }
        for i in untagged.aliases.indices { untagged.aliases[i].target.tag = 0 }
        #expect(try SetRecordCodec.decode(v1, at: 0) == untagged)
        // Written back, it is version 2.
        #expect(SetRecordCodec.encode(try SetRecordCodec.decode(v1, at: 0))[12] == 2)
    }

    /// Re-checksums a copy after a change, so the decoder's own rules are what is tested.
    static func resealed(_ bytes: [UInt8]) -> [UInt8] {
        var b = bytes
        b.replaceSubrange(8..<12, with: [0, 0, 0, 0])
        let c = CRC32C.checksum(b)
        b.replaceSubrange(8..<12, with: [UInt8(c & 0xFF), UInt8(c >> 8 & 0xFF), UInt8(c >> 16 & 0xFF), UInt8(c >> 24)])
        return b
    }

    @Test("every byte of a copy changed: the checksum catches it; changed and re-checksummed: a valid record or a FormatError")
    func everyByte() throws {
        let good = SetRecordCodec.encode(SetFormatTests.sample())
        var accepted = 0, refused = 0
        for i in 0..<good.count {
            for mask: UInt8 in [0x01, 0x80, 0xFF] {
                var b = good
                b[i] ^= mask
                #expect(throws: FormatError.self) { try SetRecordCodec.decode(b, at: 0) }
                do {
                    let r = try SetRecordCodec.decode(SetFormatTests.resealed(b), at: 0)
                    // What is accepted is exactly what the bytes say (a time, a GUID, a path byte).
                    #expect(SetRecordCodec.encode(r) == SetFormatTests.resealed(b) || (14..<16).contains(i), "byte \(i) ^ \(mask): accepted but not faithful (only a newer minor version may be)")
                    accepted += 1
                } catch { refused += 1 }
            }
        }
        #expect(refused > accepted / 4, "the rules refuse a good share of changes (\(refused) refused, \(accepted) accepted)")
    }

    /// A record changed in a way only the structural rules catch.
    static func refused(_ change: (inout SetRecord) -> Void) -> FormatError? {
        var r = sample()
        change(&r)
        do { _ = try SetRecordCodec.decode(SetRecordCodec.encode(r), at: 0); return nil } catch { return error }
    }

    @Test("hostile paths are refused: NUL, control characters, absolute, .., empty components, backslash, too long, not UTF-8")
    func hostilePaths() throws {
        for bad in ["a\0b.avhdx", "a\u{1B}[2J.avhdx", "/etc/passwd", "../other/x.avhdx", "a/../../x", "a//b", "./a", "C:\\x.avhdx",
                    String(repeating: "a", count: 1025), "a/"] {
            #expect(SetFormatTests.refused { $0.leafPath = bad } != nil, "leaf path \(bad.debugDescription) accepted")
            #expect(SetFormatTests.refused { $0.snapshots[0].path = bad } != nil, "snapshot path \(bad.debugDescription) accepted")
            #expect(SetFormatTests.refused { $0.unlinkQueue = [bad] } != nil, "unlink path \(bad.debugDescription) accepted")
        }
        // Invalid UTF-8: patch the bytes of the leaf path.
        var b = SetRecordCodec.encode(SetFormatTests.sample())
        let leaf = Array("backing/leaf.avhdx".utf8)
        let at = try #require((0..<b.count - leaf.count).first { Array(b[$0..<$0 + leaf.count]) == leaf })
        b[at] = 0xC3; b[at + 1] = 0x28
        #expect(throws: FormatError.self) { try SetRecordCodec.decode(SetFormatTests.resealed(b), at: 0) }
    }

    @Test("broken structure is refused: duplicate or zero ids, missing or fileless parents, cycles, files named twice, inconsistent reference points")
    func brokenStructure() throws {
        let cases: [(String, (inout SetRecord) -> Void)] = [
            ("zero set id", { $0.setID = .zero }),
            ("duplicate id", { $0.snapshots[1].id = $0.snapshots[0].id }),
            ("zero snapshot id", { $0.snapshots[0].id = .zero }),
            ("missing parent", { $0.snapshots[1].parent = .random() }),
            ("leaf parent missing", { $0.leafParent = .random() }),
            ("leaf parent a reference point", { $0.leafParent = $0.snapshots[3].id }),
            ("cycle", { $0.snapshots[0].parent = $0.snapshots[2].id }),
            ("file named twice", { $0.snapshots[1].path = $0.snapshots[0].path }),
            ("leaf is a snapshot's file", { $0.leafPath = $0.snapshots[0].path }),
            ("reference point with a file", { $0.snapshots[3].path = "x.avhdx" }),
            ("snapshot without a file", { $0.snapshots[0].path = "" }),
            ("snapshot without a frozen guid", { $0.snapshots[0].frozenDataWriteGUID = .zero }),
            ("pending new path already referenced", { $0.pending?.newPath = $0.leafPath }),
            ("queued unlink still referenced", { $0.unlinkQueue = [$0.leafPath] }),
            ("pending relink of a reference point", { $0.pending = PendingOperation(kind: .relink, snapshot: $0.snapshots[3].id) }),
            ("pending relink with a new path", { $0.pending = PendingOperation(kind: .relink, snapshot: $0.snapshots[0].id, newPath: "x.avhdx") }),
        ]
        for (name, change) in cases {
            #expect(SetFormatTests.refused(change) != nil, "\(name) accepted")
        }
    }

    @Test("absurd counts, lengths, flags and versions are refused before anything is allocated")
    func absurdFields() throws {
        let good = SetRecordCodec.encode(SetFormatTests.sample())
        func patched(_ offset: Int, _ bytes: [UInt8]) -> [UInt8] {
            var b = good
            b.replaceSubrange(offset..<offset + bytes.count, with: bytes)
            return SetFormatTests.resealed(b)
        }
        let cases: [(String, [UInt8])] = [
            ("length 0xFFFFFFFF", patched(24, [0xFF, 0xFF, 0xFF, 0xFF])),
            ("length not a multiple of 8", patched(24, [0x09, 0x01, 0, 0])),
            ("65535 snapshots", patched(28, [0xFF, 0xFF])),
            ("257 snapshots", patched(28, [0x01, 0x01])),
            ("65535 aliases", patched(30, [0xFF, 0xFF])),
            ("65535 unlinks", patched(32, [0xFF, 0xFF])),
            ("pending kind 9", patched(34, [9])),
            ("pending flags 0x80", patched(35, [0x80])),
            ("reserved", patched(36, [1])),
            ("major version 3", patched(12, [3, 0])),
            ("major version 0", patched(12, [0, 0])),
            ("default folder length 65535", patched(128, [0xFF, 0xFF])),
        ]
        for (name, bytes) in cases {
            #expect(throws: FormatError.self, "\(name)") { try SetRecordCodec.decode(bytes, at: 0) }
        }
        // Entry type and flags (the first entry follows the three strings).
        let r = SetFormatTests.sample()
        let entryStart = 128 + [r.defaultFolder, r.leafPath, r.pending!.newPath].reduce(0) { $0 + 2 + $1.utf8.count }
        #expect(throws: FormatError.self) { try SetRecordCodec.decode(patched(entryStart + 56, [7, 0, 0, 0]), at: 0) }
        #expect(throws: FormatError.self) { try SetRecordCodec.decode(patched(entryStart + 60, [0x10, 0, 0, 0]), at: 0) }
        #expect(throws: FormatError.self) { try SetRecordCodec.decode(patched(entryStart + 116, [0xFF, 0xFF]), at: 0) }
    }
}
