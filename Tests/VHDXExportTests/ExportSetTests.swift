import Foundation
import PropertyBased
import Testing
import VHDX
import VHDXChangeTracking
import VHDXExport
import VHDXFormat
import VHDXSets
import VHDXTestSupport

/// Exports of a VHD Set: the consistent point is a checkpoint deleted afterwards with its
/// reference point kept; the user's own checkpoints and deletes (merges) between exports
/// never make an incremental miss a change, and a base on an abandoned branch is refused.
@Suite struct ExportSetTests {
    final class Lab {
        let dir: String
        let set: String
        var model: [UInt8]
        var rng = SplitMix(seed: 5)

        /// `memory`: in /dev/shm when there is one (a tmpfs: its flushes cost nothing), for
        /// the tests that run the set's operations a thousand times.
        init(name: String = #function, memory: Bool = false) throws {
            if memory, FileManager.default.fileExists(atPath: "/dev/shm") {
                dir = "/dev/shm/vhdx-exportset-\(UInt32.random(in: 0...UInt32.max))-" + name.filter { $0.isLetter }
            } else {
                dir = Fixtures.tempPath("exportset-" + name.filter { $0.isLetter })
            }
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            set = dir + "/disk.vhds"
            var o = CreateOptions(virtualSize: 8 << 20)
            o.blockSize = 1 << 20
            try VHDSet.create(path: set, options: o)
            model = [UInt8](repeating: 0, count: 8 << 20)
        }

        deinit { try? FileManager.default.removeItem(atPath: dir) }

        func path(_ name: String) -> String { dir + "/" + name }

        func write(_ count: Int, at offset: Int) throws {
            let bytes = rng.bytes(count)
            let top = try VHDSet.open(path: set, writable: true).openLeaf(writable: true)
            try ChangeTracker.attach(to: top)
            try top.write(bytes, at: UInt64(offset))
            try top.close()
            model.replaceSubrange(offset..<offset + count, with: bytes)
        }

        @discardableResult
        func export(_ name: String, base: String? = nil) throws -> ExportSummary {
            try Exporter.export(set, to: path(name), options: ExportOptions(base: base.map(path)))
        }

        func content() throws -> [UInt8] {
            let top = try VHDSet.open(path: set).openLeaf()
            return try top.read(at: 0, count: Int(top.virtualSize))
        }
    }

    @Test("exports through checkpoints and merges restore to the set's content at each point")
    func checkpointsAndMerges() throws {
        let lab = try Lab()
        try lab.write(3 << 20, at: 0)
        try lab.export("full.vxs")
        try lab.export("full.vhdx")
        var points: [(String, String, [UInt8])] = [("full.vxs", "full.vhdx", lab.model)]
        // The export's own checkpoint is gone afterwards; its reference point is kept.
        do {
            let afterFull = try VHDSet.open(path: lab.set)
            #expect(afterFull.record.snapshots.allSatisfy { $0.isReferenceOnly })
            #expect(afterFull.record.snapshots.count == 2)
        }

        try lab.write(100_000, at: 5 << 20)
        let userCheckpoint = try VHDSet.open(path: lab.set, writable: true).checkpoint()
        try lab.write(70_000, at: 1 << 20)
        try lab.export("inc1.vxs", base: "full.vxs")
        try lab.export("inc1.avhdx", base: "full.vhdx")
        points.append(("inc1.vxs", "inc1.avhdx", lab.model))

        // The user deletes their checkpoint: its file and the leaf are merged.
        try VHDSet.open(path: lab.set, writable: true).delete(userCheckpoint.id)
        try lab.write(5000, at: 7 << 20)
        try lab.export("inc2.vxs", base: "inc1.vxs")
        try lab.export("inc2.avhdx", base: "inc1.avhdx")
        points.append(("inc2.vxs", "inc2.avhdx", lab.model))
        #expect(try lab.content() == lab.model)

        for k in points.indices {
            let out = lab.path("r\(k).vhdx")
            try Restorer.restore(to: out, from: points[0...k].map { lab.path($0.0) })
            #expect(try ExportLab.content(out) == points[k].2, "stream point \(k)")
            #expect(try ExportLab.content(lab.path(points[k].1)) == points[k].2, "chain point \(k)")
        }
        #expect(try VHDSet.open(path: lab.set).check().filter { $0.severity == .corruption }.isEmpty)
    }

    @Test("relink --accept-modified of a frozen file: the next incremental carries what changed in it (issue 16)")
    func relinkAcceptModified() throws {
        let lab = try Lab()
        try lab.write(1 << 20, at: 0)
        let s1 = try VHDSet.open(path: lab.set, writable: true).checkpoint()
        try lab.write(1 << 20, at: 2 << 20)
        try lab.export("full.vxs")
        // The frozen file written by a program that does not track (qemu-io, Hyper-V).
        let f1 = try VHDSet.open(path: lab.set).absolute(s1.path)
        let patch = [UInt8](repeating: 0x99, count: 64 << 10)
        do {
            let image = try VHDXFile.open(path: f1, writable: true)
            try image.write(patch, at: 1 << 20)
            try image.close()
        }
        lab.model.replaceSubrange((1 << 20)..<(1 << 20) + patch.count, with: patch)
        try VHDSet.open(path: lab.set, writable: true).relink(snapshot: s1.id, to: f1, acceptModified: true)
        #expect(try lab.content() == lab.model)

        let inc = try lab.export("inc.vxs", base: "full.vxs")
        #expect(inc.dataBytes + inc.zeroBytes >= UInt64(patch.count), "the incremental holds \(inc.dataBytes) data bytes")
        let out = lab.path("r.vhdx")
        try Restorer.restore(to: out, from: [lab.path("full.vxs"), lab.path("inc.vxs")])
        #expect(try ExportLab.content(out) == lab.model, "full + incremental restores the set's content")
    }

    /// Every export leaves a reference point and an alias; those the leaf's history no longer
    /// answers are pruned by the next checkpoint, so the set never fills up (it used to after
    /// 256 exports) and every incremental still restores. 300 exports by default (past the old
    /// limit of 256, and 18 times the leaf's history), 1,000 in long mode.
    @Test("300 exports of a set (1,000 in long mode) with writes between them: the set stays bounded and the incrementals restore")
    func thousandExports() throws {
        let lab = try Lab(memory: true)
        var names: [String] = []
        var states: [Int: [UInt8]] = [:]
        // Nightly exports for about three years; the first 256 filled the set before it pruned.
        let count = TestScale.factor > 1 ? 1000 : 300
        let samples = [0, 1, 255, 256, count / 2, count - 1]
        var largest = (snapshots: 0, aliases: 0)
        for i in 0..<count {
            try lab.write(4096, at: (i * 7919 % 2000) * 4096)
            let name = "e\(i).vxs"
            do { try lab.export(name, base: names.last) } catch {
                Issue.record("export \(i): \(error)")
                return
            }
            names.append(name)
            if samples.contains(i) { states[i] = lab.model }
            let r = try VHDSet.open(path: lab.set).record
            largest = (max(largest.snapshots, r.snapshots.count), max(largest.aliases, r.aliases.count))
        }
        // The leaf keeps 16 IDs of history by default: about that many reference points stay.
        #expect(largest.snapshots <= 20 && largest.aliases <= 20, "the set grew to \(largest)")
        let files = try FileManager.default.contentsOfDirectory(atPath: lab.dir).filter { $0.hasSuffix(".avhdx") }
        #expect(files.count == 1, "backing files left: \(files)")
        for k in samples {
            let out = lab.path("r\(k).vhdx")
            try Restorer.restore(to: out, from: names[0...k].map(lab.path))
            #expect(try ExportLab.content(out) == states[k], "restore of export \(k)")
            try FileManager.default.removeItem(atPath: out)
        }
        #expect(try lab.content() == lab.model)
    }

    @Test("a base on a branch the set moved away from (apply) is refused: a full export is needed")
    func abandonedBranch() throws {
        let lab = try Lab()
        try lab.write(1 << 20, at: 0)
        let snap = try VHDSet.open(path: lab.set, writable: true).checkpoint()
        try lab.write(1 << 20, at: 2 << 20)
        try lab.export("full.vxs")
        // Back to the checkpoint, discarding the branch the full export was taken on.
        _ = try VHDSet.open(path: lab.set, writable: true).apply(snap.id, discard: true)
        #expect {
            try lab.export("inc.vxs", base: "full.vxs")
        } throws: { ($0 as? ExportError)?.reason == .needsFull }
        #expect(!FileManager.default.fileExists(atPath: lab.path("inc.vxs")))
    }

    /// Random programs on a set: writes, the user's checkpoints, deletes of them (merges, with or
    /// without a reference point kept) and exports between them; every export point restores
    /// (streams) to the set's content at that point.
    @Test("random programs of writes, checkpoints, deletes and exports on a set restore to the content at each export")
    func randomSetPrograms() async {
        let program = zip(Gen.int(in: 0...5), Gen.int(in: 0...(1 << 20)), Gen.int(in: 0...(1 << 20))).array(of: 3...10)
        await propertyCheck(count: TestScale.count(6), input: program) { raw in
            let lab = try Lab(name: "random")
            var streams: [(String, [UInt8])] = []
            var checkpoints: [GUID] = []
            var log: [String] = []
            for (kind, a, b) in raw + [(5, 0, 0)] {
                switch kind {
                case 0, 1:
                    let n = 1 + b % (200 << 10), at = a * 7 % ((8 << 20) - n)
                    try lab.write(n, at: at)
                    log.append("write(\(at),\(n))")
                case 2:
                    checkpoints.append(try VHDSet.open(path: lab.set, writable: true).checkpoint().id)
                    log.append("checkpoint")
                case 3 where !checkpoints.isEmpty:
                    let id = checkpoints.remove(at: a % checkpoints.count)
                    try VHDSet.open(path: lab.set, writable: true).delete(id, keepReference: b % 2 == 0)
                    log.append("delete")
                default:
                    let name = "s\(streams.count).vxs"
                    try lab.export(name, base: streams.last?.0)
                    streams.append((name, lab.model))
                    log.append("export")
                }
            }
            for k in streams.indices {
                let out = lab.path("r\(k).vhdx")
                try Restorer.restore(to: out, from: streams[0...k].map { lab.path($0.0) })
                #expect(try ExportLab.content(out) == streams[k].1, "\(log): restore of export \(k) differs")
            }
            #expect(try lab.content() == lab.model, "\(log)")
        }
    }

    @Test("verify SET.vhds against its exports compares the set's chain (not the set file): 0, then 1 at the first changed byte")
    func verifySet() throws {
        let lab = try Lab()
        try lab.write(2 << 20, at: 0)
        try lab.export("full.vxs")
        try lab.export("full.vhdx")
        try lab.write(100_000, at: 5 << 20)
        try lab.export("inc.vxs", base: "full.vxs")
        try lab.export("inc.avhdx", base: "full.vhdx")
        let v = try vhdxBinary()
        func verify(_ exports: String) throws -> (status: Int32, stdout: String, stderr: String) {
            try Shell.run("'\(v)' verify '\(lab.set)' \(exports) --json", allowFailure: true)
        }
        let streams = "'\(lab.path("full.vxs"))' '\(lab.path("inc.vxs"))'"
        for exports in [streams, "'\(lab.path("inc.avhdx"))'"] {
            let r = try verify(exports)
            #expect(r.status == 0, "\(exports): \(r.stdout) \(r.stderr)")
            #expect(r.stdout.contains("\"identical\":true") || r.stdout.contains("\"identical\": true"), "\(r.stdout)")
        }
        // Changed through the set after the export: differs there, exit 1.
        let at = (6 << 20) + 12345
        do {
            // In a scope of its own: the leaf's file lock goes with the handle.
            let top = try VHDSet.open(path: lab.set, writable: true).openLeaf(writable: true)
            try ChangeTracker.attach(to: top)
            try top.write([0xA5, 0x5A], at: UInt64(at))
            try top.close()
        }
        for exports in [streams, "'\(lab.path("inc.avhdx"))'"] {
            let r = try verify(exports)
            #expect(r.status == 1, "\(exports): \(r.stdout) \(r.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            #expect(json?["first-difference"] as? Int == at, "\(r.stdout)")
        }
    }
}
