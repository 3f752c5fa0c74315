import Foundation
import Testing
import VHDX
import VHDXFormat
import VHDXSets
import VHDXTestSupport

/// The two copies on a real file: alternation, a torn or damaged copy (the other is used, `check`
/// says so, the next update repairs it), both damaged (a clear error, nothing written), files
/// that are not our sets (Hyper-V's, a VHDX, random bytes), truncation at every length.
@Suite("VHD Set file copies")
struct SetFileTests {
    /// A set whose file has had `updates` updates (both copies valid from the first).
    static func setFile(updates: Int) throws -> SetLab {
        let lab = try SetLab(size: 4 << 20)
        for _ in 0..<updates { _ = try lab.open(writable: true).optimize() }
        return lab
    }

    /// The error opening `path` as a set gives (nil: it opened).
    static func openError(_ path: String, writable: Bool) -> VHDXError? {
        switch Result(catching: { () throws(VHDXError) -> VHDSet in try VHDSet.open(path: path, writable: writable) }) {
        case .success: return nil
        case .failure(let e): return e
        }
    }

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }
    static func put(_ bytes: [UInt8], _ path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    @Test("updates alternate between the copies, each with the next sequence number")
    func alternation() throws {
        let lab = try SetLab(size: 4 << 20)
        var seen: [UInt64] = []
        for _ in 0..<3 {
            _ = try lab.open(writable: true).checkpoint()
            seen.append(try lab.open().record.sequence)
        }
        #expect(seen == seen.sorted() && Set(seen).count == 3)
        let raw = try SetFileTests.bytes(lab.setPath)
        let a = try SetRecordCodec.decode(Array(raw[0..<SetFileLayout.slotSize].prefix(while: { _ in true })), at: 0)
        let b = try SetRecordCodec.decode(Array(raw[SetFileLayout.slotSize...]), at: UInt64(SetFileLayout.slotSize))
        #expect(Set([a.sequence, b.sequence]).count == 2 && max(a.sequence, b.sequence) == seen.last!)
    }

    @Test("a torn or damaged current copy: the other copy is used, check reports it, the next update rewrites it")
    func tornCopy() throws {
        let lab = try SetFileTests.setFile(updates: 3)
        let before = try lab.open().record
        let current = try lab.open().record.sequence
        var raw = try SetFileTests.bytes(lab.setPath)
        // The current copy torn halfway through its header+body.
        let slot = try SetRecordCodec.decode(Array(raw[0...]), at: 0).sequence == current ? 0 : SetFileLayout.slotSize
        for i in slot + 40..<slot + 120 { raw[i] = 0 }
        try SetFileTests.put(raw, lab.setPath)
        do {
            let s = try lab.open()
            #expect(s.record.sequence == current - 1, "the older copy is used")
            #expect(s.record.leafPath == before.leafPath)
            #expect(s.copyProblem?.contains("damaged") == true, "\(String(describing: s.copyProblem))")
            #expect(try s.check().contains { $0.severity == .corruption })
        }
        _ = try lab.open(writable: true).optimize()
        #expect(try lab.open().copyProblem == nil, "the update repaired the damaged copy")
    }

    @Test("both copies damaged: a clear error naming both, and a writable open writes nothing")
    func bothDamaged() throws {
        let lab = try SetFileTests.setFile(updates: 2)
        var raw = try SetFileTests.bytes(lab.setPath)
        raw[20] ^= 1
        raw[SetFileLayout.slotSize + 20] ^= 1
        try SetFileTests.put(raw, lab.setPath)
        for writable in [false, true] {
            let e = SetFileTests.openError(lab.setPath, writable: writable)
            #expect(e?.code == .corrupt && e?.message.contains("copy A") == true && e?.message.contains("copy B") == true, "\(String(describing: e))")
            #expect(try SetFileTests.bytes(lab.setPath) == raw, "nothing written")
        }
    }

    @Test("not our set: Hyper-V's undocumented layout, a VHDX disk, random bytes, empty — a clear error and no write")
    func foreignFiles() throws {
        let dir = Fixtures.tempPath("foreign")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SplitMix(seed: 3)
        let vhdx = dir + "/disk.vhdx"
        try VHDXCreator.create(path: vhdx, options: CreateOptions(virtualSize: 4 << 20))
        let cases: [(String, [UInt8], String)] = [
            ("hyperv.vhds", rng.bytes(260 * 1024), "Microsoft has not published"),
            ("disk-as-set.vhds", try SetFileTests.bytes(vhdx), "this is a VHDX disk"),
            ("empty.vhds", [], "the file is empty"),
        ]
        for (name, content, expected) in cases {
            let p = dir + "/" + name
            try SetFileTests.put(content, p)
            for writable in [false, true] {
                let e = SetFileTests.openError(p, writable: writable)
                #expect(e?.message.contains(expected) == true, "\(name): \(String(describing: e))")
                #expect(try SetFileTests.bytes(p) == content, "\(name): written to")
            }
        }
    }

    @Test("a set file cut at every length opens from the surviving copy or fails clearly, and is never written")
    func truncation() throws {
        let lab = try SetFileTests.setFile(updates: 2)
        let raw = try SetFileTests.bytes(lab.setPath)
        let copyLength = SetRecordCodec.encode(try lab.open().record).count
        let cut = lab.dir + "/cut.vhds"
        var opened = 0, refused = 0
        // Every length through both copies' bytes, and a stride through the hole between them.
        let lengths = Array(0...copyLength + 8) + Array(stride(from: copyLength + 8, to: SetFileLayout.slotSize, by: 4093))
            + Array(SetFileLayout.slotSize...raw.count)
        for n in lengths {
            let part = Array(raw.prefix(n))
            try SetFileTests.put(part, cut)
            if let e = SetFileTests.openError(cut, writable: false) {
                #expect(!e.message.isEmpty)
                refused += 1
            } else { opened += 1 }
            #expect(try SetFileTests.bytes(cut) == part)
        }
        #expect(opened > 0 && refused > 0)
    }
}
