import Foundation
import Testing
import VHDX
import VHDXExport
import VHDXFormat
import VHDXTestSupport

/// `vhdx backups list`: each stream of a folder from its two ends, and which chains a restore
/// can follow to a full stream.
@Suite struct BackupsListTests {
    /// Counts what a probe reads.
    final class CountingSource: RangedSource {
        let inner: RangedSource
        var bytesRead = 0
        var reads = 0
        init(_ inner: RangedSource) { self.inner = inner }
        var name: String { inner.name }
        func size() throws(ExportError) -> UInt64 { try inner.size() }
        func read(at offset: UInt64, count: Int) throws(ExportError) -> [UInt8] {
            reads += 1
            bytesRead += count
            return try inner.read(at: offset, count: count)
        }
    }

    /// Disk A: full ← inc1 ← inc2 ← inc3 ← inc4, consolidations of full…inc1 and full…inc3, then
    /// inc2 deleted; disk B: full ← inc; a file that is no stream, a truncated stream, a folder.
    static func folder() throws -> (ExportLab, ExportLab) {
        let a = try ExportLab(size: 4 << 20, granule: 64 << 10, seed: 21, name: "backupsA")
        try a.write(1 << 20, at: 0)
        try a.export("a-full.vxs")
        for k in 1...4 {
            try a.write(64 << 10, at: k * (700 << 10))
            try a.export("a-inc\(k).vxs", base: k == 1 ? "a-full.vxs" : "a-inc\(k - 1).vxs")
        }
        try Consolidator.consolidate(["a-full.vxs", "a-inc1.vxs"].map(a.path), to: a.path("a-cons1.vxs"))
        try Consolidator.consolidate(["a-full.vxs", "a-inc1.vxs", "a-inc2.vxs", "a-inc3.vxs"].map(a.path), to: a.path("a-cons3.vxs"))
        try FileManager.default.removeItem(atPath: a.path("a-inc2.vxs"))
        try FileManager.default.removeItem(atPath: a.disk)

        let b = try ExportLab(size: 4 << 20, granule: 64 << 10, seed: 22, name: "backupsB")
        try b.write(1 << 20, at: 0)
        try b.export("b-full.vxs")
        try b.write(1000, at: 3 << 20)
        try b.export("b-inc1.vxs", base: "b-full.vxs")
        for f in ["b-full.vxs", "b-inc1.vxs"] { try FileManager.default.moveItem(atPath: b.path(f), toPath: a.path(f)) }
        let inc = ExportLab.fileBytes(a.path("b-inc1.vxs"))
        try Data(inc.dropLast(50)).write(to: URL(fileURLWithPath: a.path("b-cut.vxs")))
        try Data("not a stream".utf8).write(to: URL(fileURLWithPath: a.path("notes.txt")))
        try FileManager.default.createDirectory(atPath: a.path("older"), withIntermediateDirectories: false)
        return (a, b)
    }

    @Test("two disks' chains, one missing an incremental: complete and incomplete chains, consolidations standing in, files skipped")
    func listing() throws {
        let (a, b) = try Self.folder()
        _ = b
        let l = try BackupCatalog.list(folder: a.dir)
        let by = Dictionary(uniqueKeysWithValues: l.streams.map { ($0.name, $0) })
        #expect(Set(by.keys) == ["a-full.vxs", "a-inc1.vxs", "a-inc3.vxs", "a-inc4.vxs", "a-cons1.vxs", "a-cons3.vxs", "b-full.vxs", "b-inc1.vxs"])
        #expect(by["a-full.vxs"]?.kind == .full && by["a-cons1.vxs"]?.kind == .consolidated && by["a-inc1.vxs"]?.kind == .incremental)
        #expect(by["a-full.vxs"]?.restoreChain == ["a-full.vxs"])
        #expect(by["a-inc1.vxs"]?.restoreChain == ["a-full.vxs", "a-inc1.vxs"])
        #expect(by["a-cons3.vxs"]?.restoreChain == ["a-cons3.vxs"])
        // inc3's base (inc2) is gone: incomplete, naming it; inc4 restores through the consolidation.
        #expect(by["a-inc3.vxs"]?.isComplete == false)
        #expect(by["a-inc3.vxs"]?.missing?.contains("at vhdxct1:") == true)
        #expect(by["a-inc4.vxs"]?.restoreChain == ["a-cons3.vxs", "a-inc4.vxs"])
        #expect(l.orphaned.map(\.name) == ["a-inc3.vxs"])
        #expect(by["b-inc1.vxs"]?.restoreChain == ["b-full.vxs", "b-inc1.vxs"])
        #expect(by["a-inc1.vxs"]?.header.sourceDiskID != by["b-inc1.vxs"]?.header.sourceDiskID)
        #expect(l.unusable.map(\.name) == ["b-cut.vxs"])
        #expect(l.skipped.map(\.name) == ["notes.txt", "older"])
        // What it lists restores.
        for s in l.streams where s.isComplete {
            let out = a.path("r-\(s.name).raw")
            try Restorer.restore(to: out, from: s.restoreChain!.map(a.path))
            try FileManager.default.removeItem(atPath: out)
        }
        // Two reads a stream: the header record at the front, the trailer record at the end.
        let probe = CountingSource(try FileRangedSource(path: a.path("a-full.vxs")))
        _ = try BackupCatalog.list([("a-full.vxs", probe)], folder: a.dir)
        #expect(probe.reads == 2 && probe.bytesRead == 64 + 256 + 64 + 96)
    }

    @Test("through the CLI: text and --json")
    func cli() throws {
        let (a, b) = try Self.folder()
        _ = b
        let r = try Shell.run("'\(try vhdxBinary())' backups list '\(a.dir)' --json", allowFailure: true)
        #expect(r.status == 0, "\(r.stderr)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let streams = try #require(j["streams"] as? [[String: Any]])
        #expect(streams.count == 8)
        let inc3 = try #require(streams.first { $0["name"] as? String == "a-inc3.vxs" })
        #expect(inc3["complete"] as? Bool == false && inc3["restore-chain"] is NSNull && inc3["missing"] is String)
        for key in ["disk-id", "kind", "base-id", "target-id", "stream-id", "base-stream-id", "virtual-size", "bytes", "created", "created-ms"] {
            #expect(inc3[key] != nil, "\(key)")
        }
        let cons = try #require(streams.first { $0["name"] as? String == "a-cons3.vxs" })
        #expect(cons["kind"] as? String == "consolidated" && cons["stands-for"] is String && cons["base-id"] is NSNull)
        #expect((j["skipped"] as? [[String: Any]])?.count == 2 && (j["unusable"] as? [[String: Any]])?.count == 1)
        let t = try Shell.run("'\(try vhdxBinary())' backups list '\(a.dir)'", allowFailure: true)
        #expect(t.status == 0)
        #expect(t.stdout.contains("INCOMPLETE") && t.stdout.contains("1 incomplete") && t.stdout.contains("every chain complete"))
        #expect(t.stdout.contains("restore: a-cons3.vxs a-inc4.vxs"))
        let missing = try Shell.run("'\(try vhdxBinary())' backups list '\(a.dir)/nope'", allowFailure: true)
        #expect(missing.status == 1)
    }
}
