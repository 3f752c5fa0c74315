import Foundation
import PropertyBased
import Testing
import VHDX
import VHDXChangeTracking
import VHDXExport
import VHDXTestSupport

/// `vhdx consolidate`: a full export and its incrementals folded into one full stream that
/// restores to what the chain restores to, stands for the last incremental (the next one made
/// on it applies), and is refused or fails exactly as a restore of the same inputs would.
@Suite struct ConsolidateTests {
    /// A tracked 4 MiB disk, a full export and ten incrementals with writes, zeroes, trims,
    /// grows (one followed by no write near the old end) and shrinks (to sizes inside a digest
    /// block) between them; `models[k]` is the disk at export k (0 the full one).
    final class Chain {
        let lab: ExportLab
        var names: [String] = []
        var models: [[UInt8]] = []
        var headers: [StreamHeader] = []

        init(name: String = #function) throws {
            lab = try ExportLab(size: 4 << 20, granule: 64 << 10, seed: 11, name: name)
            let mib = 1 << 20
            try lab.write(3 * mib, at: 0)
            try lab.writePattern(200 << 10, at: mib)
            try export()
            let steps: [() throws -> Void] = [
                { try self.lab.write(100 << 10, at: mib + 3000); try self.lab.write(10, at: 4 * mib - 10) },
                { try self.lab.zero(300 << 10, at: 512 << 10); try self.lab.writePattern(200 << 10, at: 3 * mib, byte: 0x21) },
                { try self.lab.resize(to: 6 * mib); try self.lab.write(70000, at: 5 * mib) },
                { try self.lab.trim(2 * mib, at: 0); try self.lab.write(4096, at: 100 << 10) },
                { try self.shrink(to: 2 * mib + 512) },
                { try self.lab.resize(to: 5 * mib); try self.lab.write(64 << 10, at: 4 * mib) },
                { for k in 0..<12 { try self.lab.write(777 + k * 100, at: k * 300_000 + 511) } },
                { try self.shrink(to: 3 * mib + 1024) },
                { try self.lab.write(1000, at: 3 * mib + 24); try self.lab.writePattern(300 << 10, at: 0, byte: 0x44) },
                { try self.lab.resize(to: 4 * mib); try self.lab.writePattern(100 << 10, at: 3 * mib + (512 << 10), byte: 0x66) },
            ]
            for step in steps {
                try step()
                try export()
            }
        }

        /// The engine refuses to drop data: what a shrink cuts is zeroed first.
        func shrink(to size: Int) throws {
            try lab.zero(lab.model.count - size, at: size)
            try lab.resize(to: size)
        }

        func export() throws {
            let name = names.isEmpty ? "full.vxs" : "inc\(names.count).vxs"
            headers.append(try lab.export(name, base: names.last).header)
            names.append(name)
            models.append(lab.model)
        }

        var paths: [String] { names.map(lab.path) }
    }

    @Test("a full export and ten incrementals (writes, grows, shrinks, trims) consolidate to what restoring them gives, byte for byte")
    func equalsRestore() throws {
        let c = try Chain()
        let cons = c.lab.path("cons.vxs")
        let s = try Consolidator.consolidate(c.paths, to: cons)
        #expect(s.inputs == 11)
        let last = c.headers.last!
        #expect(s.header.targetID == last.targetID && s.header.virtualSize == last.virtualSize && !s.header.isIncremental)
        #expect(s.header.standsFor == last.streamID && s.header.streamID != last.streamID)
        #expect(s.copiedRecords > 0, "records that nothing later covers are copied as they are")

        try Restorer.restore(to: c.lab.path("chain.raw"), from: c.paths)
        try Restorer.restore(to: c.lab.path("cons.raw"), from: [cons])
        let chain = ExportLab.fileBytes(c.lab.path("chain.raw"))
        #expect(chain == c.models.last!)
        #expect(ExportLab.fileBytes(c.lab.path("cons.raw")) == chain)
        // Every prefix of the chain too (each a different mix of grows, shrinks and overlaps).
        for k in 1..<c.names.count - 1 {
            let out = c.lab.path("p\(k).vxs")
            let pk = try Consolidator.consolidate(Array(c.paths[0...k]), to: out)
            // inc1 covers part of one of the full export's 1 MiB records: the rest is cut out of it.
            if k == 1 { #expect(pk.builtRecords > 0, "records a later one covers in part are cut") }
            try Restorer.restore(to: c.lab.path("p\(k).raw"), from: [out])
            #expect(ExportLab.fileBytes(c.lab.path("p\(k).raw")) == c.models[k], "consolidation of exports 0...\(k)")
            #expect(try Verifier.verify(c.lab.path("p\(k).raw"), against: Array(c.paths[0...k])).identical)
        }
        #expect(try c.lab.listing().allSatisfy { !$0.hasPrefix(".") }, "no temporary left")
    }

    @Test("the next incremental (--base INC10) applies on the consolidated full and restores to the source; on another base it is refused")
    func nextIncrementalApplies() throws {
        let c = try Chain()
        let lab = c.lab
        try Consolidator.consolidate(c.paths, to: lab.path("cons.vxs"))
        try lab.write(50 << 10, at: 2 << 20)
        try lab.zero(64 << 10, at: 0)
        try lab.export("inc11.vxs", base: c.names.last)
        // Streams: the consolidated full, then inc11.
        try Restorer.restore(to: lab.path("r.raw"), from: [lab.path("cons.vxs"), lab.path("inc11.vxs")])
        #expect(ExportLab.fileBytes(lab.path("r.raw")) == lab.model)
        #expect(try Verifier.verify(lab.path("r.raw"), against: [lab.path("cons.vxs"), lab.path("inc11.vxs")]).identical)
        // An image restored from the consolidated full, then apply.
        try Restorer.restore(to: lab.path("r.vhdx"), from: [lab.path("cons.vxs")])
        try Applier.apply(lab.path("inc11.vxs"), to: lab.path("r.vhdx"))
        #expect(try ExportLab.content(lab.path("r.vhdx")) == lab.model)
        // The chain itself still takes inc11 as before.
        try Restorer.restore(to: lab.path("chain.raw"), from: c.paths + [lab.path("inc11.vxs")])
        #expect(ExportLab.fileBytes(lab.path("chain.raw")) == lab.model)

        // Refused: inc10 itself (already there), an incremental from inc9's change ID, one made on
        // another consolidation of the same chain (same change ID, another export), a second full.
        try Restorer.restore(to: lab.path("c.vhdx"), from: [lab.path("cons.vxs")])
        expectRefusal([.alreadyApplied], "inc10 on the consolidation of ...inc10") { try Applier.apply(c.paths.last!, to: lab.path("c.vhdx")) }
        try lab.export("on9.vxs", base: c.names[9])
        expectRefusal([.wrongBase], "an incremental on inc9") { try Restorer.restore(to: lab.path("x.raw"), from: [lab.path("cons.vxs"), lab.path("on9.vxs")]) }
        expectRefusal([.wrongBase], "an incremental on inc9, apply") { try Applier.apply(lab.path("on9.vxs"), to: lab.path("c.vhdx")) }
        try Consolidator.consolidate(c.paths, to: lab.path("cons2.vxs"))
        try lab.export("onCons2.vxs", base: "cons2.vxs")
        expectRefusal([.wrongBase], "an incremental on another consolidation") {
            try Restorer.restore(to: lab.path("y.raw"), from: [lab.path("cons.vxs"), lab.path("onCons2.vxs")])
        }
        expectRefusal([.wrongBase], "an incremental on a consolidation, on the chain it folded") {
            try Restorer.restore(to: lab.path("z.raw"), from: c.paths + [lab.path("onCons2.vxs")])
        }
        // ...and on the consolidation it was made on, it applies.
        try Restorer.restore(to: lab.path("w.raw"), from: [lab.path("cons2.vxs"), lab.path("onCons2.vxs")])
        #expect(ExportLab.fileBytes(lab.path("w.raw")) == lab.model)
        expectRefusal([.wrongBase], "a full export after the consolidation") {
            try Restorer.restore(to: lab.path("f.raw"), from: [lab.path("cons.vxs"), c.paths[0]])
        }
        #expect(!FileManager.default.fileExists(atPath: lab.path("x.raw")) && !FileManager.default.fileExists(atPath: lab.path("y.raw")))
    }

    @Test("consolidating a consolidation with later incrementals")
    func consolidateConsolidated() throws {
        let c = try Chain()
        let lab = c.lab
        try Consolidator.consolidate(Array(c.paths[0...6]), to: lab.path("cons6.vxs"))
        let again = try Consolidator.consolidate([lab.path("cons6.vxs")] + Array(c.paths[7...]), to: lab.path("cons10.vxs"))
        #expect(again.header.standsFor == c.headers.last!.streamID)
        try Restorer.restore(to: lab.path("r.raw"), from: [lab.path("cons10.vxs")])
        #expect(ExportLab.fileBytes(lab.path("r.raw")) == c.models.last!)
    }

    @Test("damaged, truncated, missing or misordered inputs: restore's errors, and nothing written")
    func refusals() throws {
        let c = try Chain()
        let lab = c.lab
        let before = try lab.listing()
        // The same inputs to restore and to consolidate: the same reason, no output from either.
        func both(_ inputs: [String], _ reasons: [ExportError.Reason], _ what: String, sameReason: Bool = true) throws {
            let r = expectRefusal(reasons, "restore: " + what) { try Restorer.restore(to: lab.path("out.raw"), from: inputs) }
            let k = expectRefusal(reasons, "consolidate: " + what) { try Consolidator.consolidate(inputs, to: lab.path("out.vxs")) }
            #expect(!sameReason || r?.reason == k?.reason, "\(what): restore \(String(describing: r)), consolidate \(String(describing: k))")
            #expect(try lab.listing() == before, "\(what): something was left behind")
        }
        var p = c.paths
        // A data record's payload byte flipped in inc7 (CRC-32C), in a copy.
        var inc7 = ExportLab.fileBytes(p[7])
        let rec = try #require(try StreamLayout(inc7).data.last)
        inc7[rec.end - 1] ^= 0x40
        let bad7 = Fixtures.tempPath("cons-bad7")
        try Data(inc7).write(to: URL(fileURLWithPath: bad7))
        defer { try? FileManager.default.removeItem(atPath: bad7) }
        p[7] = bad7
        try both(p, [.damaged], "a damaged record in inc7")
        // The same byte changed with its CRCs resealed: only the block's SHA-256 can tell.
        if !rec.isDeflated {
            var sealed = ExportLab.fileBytes(c.paths[7])
            sealed[rec.end - 1] ^= 0x40
            Surgery.sealBody(&sealed, rec)
            try Data(sealed).write(to: URL(fileURLWithPath: bad7))
            try both(p, [.damaged], "a resealed changed byte in inc7")
        }
        p = c.paths
        let cut = Fixtures.tempPath("cons-cut3")
        defer { try? FileManager.default.removeItem(atPath: cut) }
        for drop in [10, 200] {
            let inc3 = ExportLab.fileBytes(p[3])
            try Data(inc3.dropLast(drop)).write(to: URL(fileURLWithPath: cut))
            var q = p
            q[3] = cut
            try both(q, [.damaged], "inc3 without its last \(drop) bytes")
        }
        // A missing middle incremental, two swapped, a full export twice, another disk's.
        try both(Array(p[0...4]) + Array(p[6...]), [.wrongBase], "inc5 missing")
        var swapped = p
        swapped.swapAt(3, 4)
        try both(swapped, [.wrongBase], "inc3 and inc4 swapped")
        try both([p[0]] + [p[0]] + Array(p[1...]), [.wrongBase], "the full export twice")
        try both(Array(p[1...]), [.wrongBase], "no full export first")
        let other = try ExportLab(size: 4 << 20, seed: 5, name: "consother")
        try other.export("o.vxs")
        try both([other.path("o.vxs")] + Array(p[1...]), [.otherDisk], "another disk's full export")
        // Not a stream at all (restore takes a VHDX as a chain's top, alone: "invalid" with more inputs).
        try both([lab.disk] + Array(p[1...]), [.notAnExport, .invalid], "the source disk as the full export", sameReason: false)

        // Outputs: never over an input (even with overwrite), never over an existing file unasked.
        expectRefusal([.invalid], "over an input") { try Consolidator.consolidate(p, to: p.last!, overwrite: true) }
        expectRefusal([.invalid], "a single input") { try Consolidator.consolidate([p[0]], to: lab.path("one.vxs")) }
        FileManager.default.createFile(atPath: lab.path("taken.vxs"), contents: Data([1, 2, 3]))
        #expect(throws: (any Error).self) { try Consolidator.consolidate(p, to: lab.path("taken.vxs")) }
        #expect(ExportLab.fileBytes(lab.path("taken.vxs")) == [1, 2, 3])
        #expect(ExportLab.fileBytes(p.last!) == ExportLab.fileBytes(c.paths.last!))
    }

    /// (Tracking reports the grown range as changed, so the incremental covers the block the
    /// shrink ended in; blocks pieced together from several inputs are ChainSweepTests' job.)
    @Test("a shrink to a size inside a digest block, then a grow exported with --since")
    func unalignedBoundary() throws {
        let lab = try ExportLab(size: 4 << 20, granule: 64 << 10, seed: 3)
        try lab.write(4 << 20, at: 0)
        let full = try lab.export("full.vxs")
        try lab.zero((2 << 20) - 512, at: (2 << 20) + 512)
        try lab.resize(to: (2 << 20) + 512)
        let inc1 = try lab.export("inc1.vxs", base: "full.vxs")
        #expect(inc1.header.virtualSize == (2 << 20) + 512)
        try lab.resize(to: 5 << 20)
        try lab.write(1000, at: 4 << 20)
        try lab.export("inc2.vxs", since: inc1.header.targetID)
        let inputs = ["full.vxs", "inc1.vxs", "inc2.vxs"].map(lab.path)
        try Consolidator.consolidate(inputs, to: lab.path("cons.vxs"))
        try Restorer.restore(to: lab.path("r.raw"), from: [lab.path("cons.vxs")])
        try Restorer.restore(to: lab.path("chain.raw"), from: inputs)
        #expect(ExportLab.fileBytes(lab.path("chain.raw")) == lab.model)
        #expect(ExportLab.fileBytes(lab.path("r.raw")) == lab.model)
        _ = full
    }

    @Test("random programs: consolidating every prefix of the streams equals the disk at that export")
    func randomPrograms() async {
        await propertyCheck(count: TestScale.count(6), input: ExportFlowTests.program) { raw in
            let steps = raw.map { ExportFlowTests.Step($0.0, $0.1, $0.2) }
            let seed = UInt64(truncatingIfNeeded: raw.reduce(13) { $0 &* 31 &+ $1.2 })
            let problems = try ConsolidateTests.run(steps, seed: seed)
            #expect(problems.isEmpty, "\(steps): \(problems)")
        }
    }

    static func run(_ steps: [ExportFlowTests.Step], seed: UInt64) throws -> [String] {
        let lab = try ExportLab(size: 4 << 20, seed: seed, name: "consflow\(seed)")
        var streams: [(name: String, model: [UInt8])] = []
        func export() throws {
            let name = "s\(streams.count).vxs"
            try lab.export(name, base: streams.last?.name)
            streams.append((name, lab.model))
        }
        try export()
        for step in steps {
            switch step {
            case .write, .pattern, .zero, .trim, .resize: try step.change(lab)
            case .exportStream, .exportChain: try export()
            }
        }
        try export()
        var problems: [String] = []
        for k in 1..<streams.count {
            let out = lab.path("c\(k).vxs"), raw = lab.path("c\(k).raw")
            try Consolidator.consolidate(streams[0...k].map { lab.path($0.name) }, to: out)
            try Restorer.restore(to: raw, from: [out])
            if ExportLab.fileBytes(raw) != streams[k].model { problems.append("consolidation of streams 0...\(k) differs from the model") }
            try? FileManager.default.removeItem(atPath: out)
            try? FileManager.default.removeItem(atPath: raw)
        }
        return problems
    }
}
