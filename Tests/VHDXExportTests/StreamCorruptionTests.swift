import Foundation
import Testing
import VHDX
import VHDXExport
import VHDXFormat
import VHDXTestSupport

/// Bad input to restore, apply and verify: a flipped byte in every record kind, truncation at
/// every record boundary, records swapped, duplicated, dropped or spliced from another stream,
/// bytes after the trailer, an incremental on the wrong base, applied twice or out of order, a
/// stream of another disk. Each must end in its own clear error with nothing written: no
/// restore output, no temporary, an applied-to image byte-identical.
@Suite("Export streams: corrupt, truncated, spliced and misordered input")
struct StreamCorruptionTests {
    /// Byte positions flipped in every record header: magic, stream id, index, kind, body
    /// length, virtual offset, length, body CRC, header CRC.
    static let headerFlips = [5, 12, 24, 32, 36, 44, 52, 57, 62]

    /// Body positions flipped: start, middle, end.
    static func bodyFlips(_ r: StreamLayout.Record) -> [Int] {
        r.bodyLength == 0 ? [] : Array(Set([0, r.bodyLength / 2, r.bodyLength - 1])).sorted()
    }

    /// `stream` with the byte at `at` flipped.
    static func flipped(_ stream: [UInt8], at: Int) -> [UInt8] {
        var s = stream
        s[at] ^= 0x01
        return s
    }

    /// Restore from `inputs` must fail with one of `reasons` and leave the folder as it was
    /// (no output, no temporary). The sweeps restore to a raw image (`raw`): the checks are the
    /// reader's, the same for either output, and a VHDX output costs several times more here.
    @discardableResult
    func restoreRefused(_ s: CorruptionCase, _ inputs: [String], _ reasons: [ExportError.Reason], _ what: String, raw: Bool = false,
                        sourceLocation: SourceLocation = #_sourceLocation) throws -> ExportError? {
        let before = try s.listing()
        let out = s.path(raw ? "out.img" : "out.vhdx")
        let e = expectRefusal(reasons, what, sourceLocation: sourceLocation) { _ = try Restorer.restore(to: out, from: inputs) }
        let after = try s.listing()
        #expect(after == before, "\(what): the restore left \(Set(after).subtracting(before).sorted())", sourceLocation: sourceLocation)
        // Whatever it left must not turn the next case into an "already exists".
        for name in Set(after).subtracting(before) { try FileManager.default.removeItem(atPath: s.path(name)) }
        return e
    }

    /// Apply of `incremental` onto `image` must fail with one of `reasons` and leave the image
    /// byte-identical and the folder as it was.
    @discardableResult
    func applyRefused(_ s: CorruptionCase, _ incremental: String, to image: String, _ reasons: [ExportError.Reason], _ what: String,
                      sourceLocation: SourceLocation = #_sourceLocation) throws -> ExportError? {
        let before = try s.listing()
        let bytes = fileData(image)
        let e = expectRefusal(reasons, what, sourceLocation: sourceLocation) { _ = try Applier.apply(incremental, to: image) }
        if fileData(image) != bytes {
            Issue.record("\(what): the image changed", sourceLocation: sourceLocation)
            // Put it back, so the next case starts from the same image.
            try bytes.map { try $0.write(to: URL(fileURLWithPath: image)) }
        }
        let after = try s.listing()
        #expect(after == before, "\(what): the apply left \(Set(after).subtracting(before).sorted())", sourceLocation: sourceLocation)
        return e
    }

    // MARK: - The streams as made

    @Test("the intact streams hold every record kind, restore, apply and verify; splitting and re-joining them changes no byte")
    func baseline() throws {
        let s = try CorruptionCase()
        for (name, bytes) in [("full", s.full), ("inc1", s.inc1)] {
            let layout = try StreamLayout(bytes)
            #expect(layout.data.contains { $0.isDeflated }, "\(name) has a deflated data record")
            #expect(layout.data.contains { !$0.isDeflated }, "\(name) has a stored data record")
            #expect(!layout.zero.isEmpty, "\(name) has a zero record")
        }
        for bytes in [s.full, s.inc1, s.inc2] { #expect(Surgery.join(try Surgery.split(bytes)) == bytes) }
        let restored = try s.restored("all.vhdx", [s.fullPath, s.inc1Path, s.inc2Path])
        #expect(try ExportLab.content(restored) == s.contents[2])
        let image = try s.restored("applied.vhdx", [s.fullPath])
        _ = try Applier.apply(s.inc1Path, to: image)
        _ = try Applier.apply(s.inc2Path, to: image)
        #expect(try ExportLab.content(image) == s.contents[2])
        #expect(try Verifier.verify(image, against: [s.fullPath, s.inc1Path, s.inc2Path]).identical)
    }

    // MARK: - Flipped bytes

    /// A flip outside the magic is the CRC's to catch first (the header's, or the body's): the
    /// digests and the trailer are the second line, for what a CRC cannot see.
    static func expectCaughtByCRC(_ e: ExportError?, _ r: StreamLayout.Record, _ p: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let e, p - r.start >= 8 else { return }
        #expect(e.message.contains("CRC-32C"), "\(r), byte \(p): \(e)", sourceLocation: sourceLocation)
    }

    @Test("a flipped byte in every record of a full export (header, data stored and deflated, zero, trailer): damaged, no output")
    func flippedFull() throws {
        let s = try CorruptionCase()
        let layout = try StreamLayout(s.full)
        let image = try s.restored("image.vhdx", [s.fullPath])
        var verified: Set<String> = []
        for r in layout.records {
            for p in Self.headerFlips.map({ r.start + $0 }) + Self.bodyFlips(r).map({ r.bodyStart + $0 }) {
                let bad = try s.save(Self.flipped(s.full, at: p), as: "bad")
                let reasons: [ExportError.Reason] = p < 8 ? [.notAnExport] : [.damaged]
                let e = try restoreRefused(s, [bad], reasons, "\(r), byte \(p) flipped", raw: true)
                Self.expectCaughtByCRC(e, r, p)
            }
            // Once per record kind: restore to a VHDX, and verify (a damaged input is an error, not a verdict).
            if verified.insert("\(r.kind)\(r.kind == .data ? r.isDeflated ? " deflated" : " stored" : "")").inserted {
                let bad = try s.save(Self.flipped(s.full, at: r.end - 1), as: "bad")
                try restoreRefused(s, [bad], [.damaged], "\(r)'s last byte flipped, VHDX output")
                expectRefusal([.damaged], "verify with \(r)'s last byte flipped") { _ = try Verifier.verify(image, against: [bad]) }
            }
        }
        #expect(verified.count == 5, "verify saw the header, stored and deflated data, zero and trailer records: \(verified)")
    }

    @Test("a flipped byte in every record of an incremental: apply refuses it (image byte-identical), restore and verify too")
    func flippedIncremental() throws {
        let s = try CorruptionCase()
        let layout = try StreamLayout(s.inc1)
        let image = try s.restored("image.vhdx", [s.fullPath])
        let restoredAll = try s.restored("image1.vhdx", [s.fullPath, s.inc1Path])
        for r in layout.records {
            let positions = Self.headerFlips.map { r.start + $0 } + Self.bodyFlips(r).map { r.bodyStart + $0 }
            for p in positions {
                let bad = try s.save(Self.flipped(s.inc1, at: p), as: "bad")
                let reasons: [ExportError.Reason] = p < 8 ? [.notAnExport] : [.damaged]
                let e = try applyRefused(s, bad, to: image, reasons, "apply: \(r), byte \(p) flipped")
                Self.expectCaughtByCRC(e, r, p)
            }
            // Restore and verify read the full export first: a header and a body flip of each record.
            for p in [r.start + 44, r.end - 1] {
                let bad = try s.save(Self.flipped(s.inc1, at: p), as: "bad")
                try restoreRefused(s, [s.fullPath, bad], [.damaged], "restore: \(r), byte \(p) flipped", raw: p != r.end - 1)
                expectRefusal([.damaged], "verify: \(r), byte \(p) flipped") { _ = try Verifier.verify(restoredAll, against: [s.fullPath, bad]) }
            }
        }
        // Still whole: the intact incremental applies.
        _ = try Applier.apply(s.inc1Path, to: image)
        #expect(try ExportLab.content(image) == s.contents[1])
    }

    @Test("a byte changed with the CRCs re-sealed in every record: the order checks, the block SHA-256s and the trailer digest still tell")
    func forgedFlips() throws {
        let s = try CorruptionCase()
        let image = try s.restored("image.vhdx", [s.fullPath])
        // Header fields (the CRCs themselves are re-sealed), then body positions per record kind.
        let header = [12, 24, 32, 33, 34, 36, 40, 44, 48, 52]
        func body(_ r: StreamLayout.Record, digests: Int) -> [Int] {
            switch r.kind {
            case .header: [0, 4, 8, 30, 44, 60, 100, 120, 140, 152, 161, 170, 172, 176, 186, 200, 255]
            case .trailer: [0, 8, 16, 24, 32, 40, 48, 79, 80, 95]
            case .data: Array(Set([0, digests - 1, digests, (digests + r.bodyLength) / 2, r.bodyLength - 1])).sorted()
            case .zero: []
            }
        }
        for (name, stream) in [("full", s.full), ("inc1", s.inc1)] {
            let layout = try StreamLayout(stream)
            for r in layout.records {
                let digests = Int((r.length + (64 << 10) - 1) / (64 << 10)) * 32
                for p in header + body(r, digests: digests).map({ 64 + $0 }) {
                    var bad = stream
                    bad[r.start + p] ^= 0x01
                    if p >= 64 { Surgery.sealBody(&bad, r) } else { Surgery.sealHeader(&bad, at: r.start) }
                    let path = try s.save(bad, as: "bad")
                    let what = "\(name) \(r), byte \(p) of the record changed, CRCs re-sealed"
                    if name == "full" {
                        try restoreRefused(s, [path], [.damaged], what, raw: true)
                    } else {
                        // The incremental's base fields name another base: refused before its records are read.
                        let base = r.kind == .header && (64 + 40..<64 + 152).contains(p)
                        try applyRefused(s, path, to: image, base ? [.damaged, .wrongBase] : [.damaged], what)
                    }
                }
            }
        }
    }

    @Test("a payload byte changed with its record's CRC-32C kept (a collision): the block's SHA-256 tells, in every stored data record")
    func crcCollision() throws {
        let s = try CorruptionCase()
        let image = try s.restored("image.vhdx", [s.fullPath])
        for (name, stream) in [("full", s.full), ("inc1", s.inc1)] {
            let layout = try StreamLayout(stream)
            let stored = layout.data.filter { !$0.isDeflated }
            try #require(!stored.isEmpty)
            for r in stored {
                // A byte in the payload's last block, 4 more bytes after it restore the CRC:
                // the header (so the trailer digest) and the block digests are unchanged.
                var bad = stream
                let p = r.end - 200
                Surgery.flipKeepingCRC(&bad, r.bodyStart..<r.end, flip: p, fix: p + 100)
                #expect(CRC32C.checksum(bad[r.bodyStart..<r.end]) == CRC32C.checksum(stream[r.bodyStart..<r.end]))
                #expect(bad[r.start..<r.start + 64] == stream[r.start..<r.start + 64] && bad != stream)
                let path = try s.save(bad, as: "bad")
                let what = "\(name) \(r): a payload byte changed, its CRC-32C kept"
                let e = name == "full" ? try restoreRefused(s, [path], [.damaged], what, raw: true)
                                       : try applyRefused(s, path, to: image, [.damaged], what)
                #expect(e?.message.contains("SHA-256") == true, "\(String(describing: e))")
                if name == "inc1" {
                    expectRefusal([.damaged], "verify: \(what)") { _ = try Verifier.verify(image, against: [s.fullPath, path]) }
                }
            }
        }
    }

    // MARK: - Truncation

    /// Every record boundary, a point inside each record's header and inside its body.
    static func cuts(_ layout: StreamLayout) -> [Int] {
        var out: Set<Int> = [0, 4]
        for r in layout.records {
            out.insert(r.start)
            out.insert(r.start + 30)
            if r.bodyLength > 0 { out.insert(r.bodyStart); out.insert(r.bodyStart + r.bodyLength / 2) }
        }
        out.remove(layout.records.last!.end)
        return out.sorted()
    }

    @Test("a full export or an incremental cut at every record boundary and inside records: damaged, nothing written")
    func truncated() throws {
        let s = try CorruptionCase()
        let image = try s.restored("image.vhdx", [s.fullPath])
        for cut in Self.cuts(try StreamLayout(s.full)) {
            let bad = try s.save(Array(s.full[0..<cut]), as: "bad")
            // Fewer than the 8 magic bytes: nothing says it was an export.
            let reasons: [ExportError.Reason] = cut < 8 ? [.notAnExport] : [.damaged]
            let e = try restoreRefused(s, [bad], reasons, "the full export cut at \(cut)", raw: true)
            if cut >= 8, let e { #expect(e.message.contains("truncated"), "cut at \(cut): \(e)") }
        }
        let layout = try StreamLayout(s.inc1)
        for cut in Self.cuts(layout) {
            let bad = try s.save(Array(s.inc1[0..<cut]), as: "bad")
            let reasons: [ExportError.Reason] = cut < 8 ? [.notAnExport] : [.damaged]
            try applyRefused(s, bad, to: image, reasons, "the incremental cut at \(cut)")
            if layout.records.contains(where: { $0.start == cut }) {
                try restoreRefused(s, [s.fullPath, bad], reasons, "restore: the incremental cut at \(cut)", raw: true)
            }
        }
    }

    // MARK: - Records swapped, duplicated, dropped, spliced

    @Test("two data records swapped (renumbered, CRCs re-sealed), or two equal-length records' bodies swapped in place: damaged")
    func swapped() throws {
        let s = try CorruptionCase()
        let image = try s.restored("image.vhdx", [s.fullPath])
        for (name, stream) in [("full", s.full), ("inc1", s.inc1)] {
            let layout = try StreamLayout(stream)
            let data = layout.data
            try #require(data.count >= 2)
            // Whole records exchanged: extents out of order.
            var records = try Surgery.split(stream)
            let (a, b) = (data[0].number, data[data.count - 1].number)
            records.swapAt(a, b)
            let bad = try s.save(Surgery.join(records), as: "bad")
            let e = name == "full" ? try restoreRefused(s, [bad], [.damaged], "\(name): records \(a) and \(b) swapped")
                                   : try applyRefused(s, bad, to: image, [.damaged], "\(name): records \(a) and \(b) swapped")
            // A full export's extents must also leave no gap: that is what it meets first there.
            #expect(e?.message.contains(name == "full" ? "a gap" : "out of order") == true, "\(String(describing: e))")

            // A data record and the zero record after it exchanged.
            if let z = layout.zero.first(where: { $0.number > data[0].number }) {
                records = try Surgery.split(stream)
                records.swapAt(data[0].number, z.number)
                let bad = try s.save(Surgery.join(records), as: "bad")
                try restoreRefused(s, name == "full" ? [bad] : [s.fullPath, bad], [.damaged], "\(name): data \(data[0].number) and zero \(z.number) swapped")
            }
        }
        // Bodies exchanged between two data records of equal length: each body still matches
        // its own block digests and each header its place, so only the trailer's digest over
        // the records' digests, in order, can tell.
        let layout = try StreamLayout(s.full)
        let pair = try #require(layout.data.enumerated().lazy.compactMap { i, x in
            layout.data[(i + 1)...].first { $0.length == x.length }.map { (x, $0) }
        }.first)
        let original = try Surgery.split(s.full)
        #expect(original[pair.0.number][64...] != original[pair.1.number][64...])
        var records = original
        for (target, source) in [(pair.0, pair.1), (pair.1, pair.0)] {
            let body = original[source.number][64...]
            var rec = Array(original[target.number][0..<64]) + body
            rec[33] = source.flags
            Surgery.put32(&rec, 36, UInt32(body.count))
            Surgery.put32(&rec, 56, CRC32C.checksum(body))
            records[target.number] = rec
        }
        let bad = try s.save(Surgery.join(records), as: "bad")
        let e = try restoreRefused(s, [bad], [.damaged], "bodies of \(pair.0) and \(pair.1) swapped")
        #expect(e?.message.contains("trailer") == true, "\(String(describing: e))")
    }

    @Test("a record duplicated in place or at a free offset, a record dropped, bytes or a second trailer after the trailer: damaged")
    func duplicatedAndDropped() throws {
        let s = try CorruptionCase()
        let image = try s.restored("image.vhdx", [s.fullPath])
        let layout = try StreamLayout(s.inc1)
        let records = try Surgery.split(s.inc1)
        let d = try #require(layout.data.first)

        var dup = records
        dup.insert(records[d.number], at: d.number + 1)
        var bad = try s.save(Surgery.join(dup), as: "bad")
        try applyRefused(s, bad, to: image, [.damaged], "\(d) duplicated in place")

        // A copy moved to a range the incremental does not cover, everything after renumbered:
        // the record itself is sound, the trailer's counts and digest are not.
        let covered = layout.records.filter { $0.kind == .data || $0.kind == .zero }
        let free = try #require(stride(from: UInt64(0), to: 8 << 20, by: 64 << 10).first { o in
            !covered.contains { o < $0.offset + $0.length && $0.offset < o + d.length } && o + d.length <= 8 << 20
        })
        let before = covered.last { $0.offset < free }?.number ?? 0
        var moved = records[d.number]
        Surgery.put64(&moved, 40, free)
        dup = records
        dup.insert(moved, at: before + 1)
        bad = try s.save(Surgery.join(dup), as: "bad")
        try applyRefused(s, bad, to: image, [.damaged], "\(d) copied to \(free)")
        try restoreRefused(s, [s.fullPath, bad], [.damaged], "\(d) copied to \(free)")

        for r in layout.records where r.kind == .data || r.kind == .zero {
            var dropped = records
            dropped.remove(at: r.number)
            bad = try s.save(Surgery.join(dropped), as: "bad")
            let e = try applyRefused(s, bad, to: image, [.damaged], "\(r) dropped")
            #expect(e?.message.contains("trailer") == true, "\(String(describing: e))")
        }

        for (what, tail) in [("a zero byte", [UInt8(0)]), ("the trailer again", records.last!), ("a whole record", records[d.number])] {
            bad = try s.save(s.inc1 + tail, as: "bad")
            try applyRefused(s, bad, to: image, [.damaged], "\(what) after the trailer")
            let full = try s.save(s.full + tail, as: "badfull")
            try restoreRefused(s, [full], [.damaged], "\(what) after the full export's trailer")
            try FileManager.default.removeItem(atPath: full)
        }
    }

    @Test("records spliced from another export of the same disk (stream id adopted or not), its header or its trailer: damaged")
    func spliced() throws {
        let s = try CorruptionCase()
        let mine = try StreamLayout(s.full), other = ExportLab.fileBytes(s.fullBPath)
        let theirs = try StreamLayout(other)
        let records = try Surgery.split(s.full), foreign = try Surgery.split(other)
        let streamID = s.full[8..<24]
        #expect(other[8..<24] != streamID)

        // A data record of the other export at the very same place: its body matches its own
        // digests, only the stream id (or, once adopted, the trailer digest) gives it away.
        let match = try #require(mine.data.lazy.compactMap { r in
            theirs.data.first { $0.offset == r.offset && $0.length == r.length && foreign[$0.number][64...] != records[r.number][64...] }.map { (r, $0) }
        }.first)
        var spliced = records
        spliced[match.0.number] = foreign[match.1.number]
        var bad = try s.save(Surgery.join(spliced), as: "bad")
        var e = try restoreRefused(s, [bad], [.damaged], "\(match.1) of another stream in place of \(match.0)")
        #expect(e?.message.contains("another stream") == true, "\(String(describing: e))")
        spliced[match.0.number] = Surgery.adopt(foreign[match.1.number], streamID: streamID)
        bad = try s.save(Surgery.join(spliced), as: "bad")
        e = try restoreRefused(s, [bad], [.damaged], "\(match.1) of another stream, its stream id adopted, in place of \(match.0)")
        #expect(e?.message.contains("trailer") == true, "\(String(describing: e))")

        // The other export's header record in front of these records: they are not its.
        bad = try s.save(Surgery.join([foreign[0]] + records.dropFirst()), as: "bad")
        try restoreRefused(s, [bad], [.damaged], "another export's header record")
        // The other export's trailer, adopted: the counts may agree, the digest does not.
        bad = try s.save(Surgery.join(records.dropLast() + [Surgery.adopt(foreign.last!, streamID: streamID)]), as: "bad")
        try restoreRefused(s, [bad], [.damaged], "another export's trailer")
        // The incremental's records behind the full export's header (stream id adopted).
        let inc = try Surgery.split(s.inc1)
        bad = try s.save(Surgery.join([records[0]] + inc.dropFirst().map { Surgery.adopt($0, streamID: streamID) }), as: "bad")
        try restoreRefused(s, [bad], [.damaged], "the incremental's records behind the full export's header")
    }

    // MARK: - Order, base, disk

    @Test("apply onto the wrong base (an older full, another chain, an image written since), twice, out of order: refused, image byte-identical")
    func applyOrder() throws {
        let s = try CorruptionCase()
        let older = try s.restored("older.vhdx", [s.full0Path])
        try applyRefused(s, s.inc1Path, to: older, [.wrongBase], "inc1 onto an older full")
        let chainA = try s.restored("chainA.vhdx", [s.fullPath, s.inc1Path])
        try applyRefused(s, s.incBPath, to: chainA, [.wrongBase], "an incremental of another chain")

        let image = try s.restored("image.vhdx", [s.fullPath])
        try applyRefused(s, s.inc2Path, to: image, [.wrongBase], "inc2 before inc1")
        try applyRefused(s, s.fullPath, to: image, [.invalid], "a full export")
        _ = try Applier.apply(s.inc1Path, to: image)
        try applyRefused(s, s.inc1Path, to: image, [.alreadyApplied], "inc1 applied twice")
        _ = try Applier.apply(s.inc2Path, to: image)
        try applyRefused(s, s.inc2Path, to: image, [.alreadyApplied], "inc2 applied twice")
        try applyRefused(s, s.inc1Path, to: image, [.wrongBase, .alreadyApplied], "inc1 after inc2")
        #expect(try ExportLab.content(image) == s.contents[2])
        #expect(try Verifier.verify(image, against: [s.fullPath, s.inc1Path, s.inc2Path]).identical)

        // Written since the restore: it no longer holds the export its record names.
        let written = try s.restored("written.vhdx", [s.fullPath])
        do {
            let f = try VHDXFile.open(path: written, writable: true)
            try f.write([1, 2, 3], at: 4096)
            try f.close()
        }
        try applyRefused(s, s.inc1Path, to: written, [.wrongBase], "inc1 onto an image written since its restore")
    }

    @Test("an export of another disk: apply and restore refuse it; restore and verify refuse inputs out of order or not starting with a full export")
    func otherDiskAndRestoreOrder() throws {
        let s = try CorruptionCase()

        let image = try s.restored("image.vhdx", [s.fullPath])
        try applyRefused(s, s.otherIncPath, to: image, [.otherDisk], "another disk's incremental")
        try restoreRefused(s, [s.fullPath, s.otherIncPath], [.otherDisk], "restore: another disk's incremental")
        try restoreRefused(s, [s.otherFullPath, s.inc1Path], [.otherDisk], "restore: another disk's full export")

        try restoreRefused(s, [s.fullPath, s.inc2Path, s.inc1Path], [.wrongBase], "restore: incrementals out of order")
        try restoreRefused(s, [s.fullPath, s.inc2Path], [.wrongBase], "restore: inc1 missing")
        try restoreRefused(s, [s.full0Path, s.inc1Path], [.wrongBase], "restore: inc1 on an older full")
        try restoreRefused(s, [s.fullPath, s.inc1Path, s.inc1Path], [.alreadyApplied], "restore: inc1 twice")
        try restoreRefused(s, [s.inc1Path], [.wrongBase], "restore: an incremental first")
        try restoreRefused(s, [s.inc1Path, s.fullPath], [.wrongBase], "restore: the incremental before its full export")
        let notExport = try s.save(Array("just some bytes, not an export at all".utf8), as: "notes.txt")
        try restoreRefused(s, [notExport], [.notAnExport], "restore: not an export")

        let restored = try s.restored("image1.vhdx", [s.fullPath, s.inc1Path])
        expectRefusal([.wrongBase], "verify: out of order") { _ = try Verifier.verify(restored, against: [s.fullPath, s.inc2Path, s.inc1Path]) }
        expectRefusal([.otherDisk], "verify: another disk's incremental") { _ = try Verifier.verify(restored, against: [s.fullPath, s.otherIncPath]) }
    }

    @Test("restore --force over an existing file with a damaged input leaves that file byte-identical")
    func overwriteKeepsTarget() throws {
        let s = try CorruptionCase()
        let target = try s.restored("target.vhdx", [s.fullPath])
        let bytes = fileData(target)
        let layout = try StreamLayout(s.inc1)
        for r in layout.records {
            let bad = try s.save(Self.flipped(s.inc1, at: r.end - 1), as: "bad")
            let before = try s.listing()
            expectRefusal([.damaged], "\(r) flipped") { _ = try Restorer.restore(to: target, from: [s.fullPath, bad], overwrite: true) }
            #expect(fileData(target) == bytes, "\(r): the existing output changed")
            #expect(try s.listing() == before)
        }
    }

    // MARK: - Through the CLI

    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    @Test("vhdx restore, apply and verify on bad input: exit codes 2 (damaged) and 3 (refused order), the problem named on stderr, nothing written")
    func cli() throws {
        let s = try CorruptionCase()
        let out = s.path("out.vhdx")
        let damagedFull = try s.save(Self.flipped(s.full, at: s.full.count / 2), as: "damaged-full")
        let truncatedFull = try s.save(Array(s.full.dropLast(10)), as: "truncated-full")
        let damagedInc = try s.save(Self.flipped(s.inc1, at: s.inc1.count / 2), as: "damaged-inc")
        let image = try s.restored("image.vhdx", [s.fullPath])

        func expectExit(_ args: String, _ code: Int32, _ says: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let before = try s.listing()
            let imageBytes = fileData(image)
            let r = try vhdx(args)
            #expect(r.status == code, "vhdx \(args): exit \(r.status), expected \(code); stderr: \(r.stderr)", sourceLocation: sourceLocation)
            #expect(r.stderr.contains(says), "vhdx \(args): stderr \(r.stderr) should say \(says)", sourceLocation: sourceLocation)
            #expect(try s.listing() == before, "vhdx \(args) left files behind", sourceLocation: sourceLocation)
            #expect(fileData(image) == imageBytes, "vhdx \(args) changed the image", sourceLocation: sourceLocation)
        }

        // restore: 2 damaged or not an export, 3 refused order, 1 other.
        try expectExit("restore '\(out)' '\(damagedFull)'", 2, "damaged input")
        try expectExit("restore '\(out)' '\(truncatedFull)'", 2, "truncated")
        try expectExit("restore '\(out)' '\(s.fullPath)' '\(damagedInc)'", 2, "damaged input")
        try expectExit("restore '\(out)' '\(s.sourceDisk)'", 2, "not an export")
        try expectExit("restore '\(out)' '\(s.inc1Path)'", 3, "wrong base")
        try expectExit("restore '\(out)' '\(s.fullPath)' '\(s.inc2Path)' '\(s.inc1Path)'", 3, "wrong base")
        try expectExit("restore '\(out)' '\(s.fullPath)' '\(s.otherIncPath)'", 3, "another disk")
        try expectExit("restore '\(out)' '\(s.path("missing"))'", 1, "cannot open")

        // apply: 2 damaged, 3 refused; the image untouched.
        try expectExit("apply '\(image)' '\(damagedInc)'", 2, "damaged input")
        try expectExit("apply '\(image)' '\(s.inc2Path)'", 3, "wrong base")
        try expectExit("apply '\(image)' '\(s.otherIncPath)'", 3, "another disk")
        // From standard input: spooled beside the image first; the spool must go too.
        try expectExit("apply '\(image)' - < '\(damagedInc)'", 2, "damaged input")
        try expectExit("restore '\(out)' - < '\(damagedFull)'", 2, "damaged input")
        #expect(try vhdx("apply '\(image)' '\(s.inc1Path)'").status == 0)
        try expectExit("apply '\(image)' '\(s.inc1Path)'", 3, "already applied")

        // verify: 0 identical, 1 differs, 2 damaged, 3 out of order.
        #expect(try vhdx("verify '\(image)' '\(s.fullPath)' '\(s.inc1Path)'").status == 0)
        let differs = try vhdx("verify '\(image)' '\(s.fullPath)'")
        #expect(differs.status == 1 && differs.stdout.contains("first difference"), "\(differs)")
        try expectExit("verify '\(image)' '\(s.fullPath)' '\(damagedInc)'", 2, "damaged input")
        try expectExit("verify '\(image)' '\(truncatedFull)' '\(s.inc1Path)'", 2, "damaged input")
        try expectExit("verify '\(image)' '\(s.fullPath)' '\(s.inc2Path)'", 3, "wrong base")
    }
}
