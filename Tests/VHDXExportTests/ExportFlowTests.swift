import Foundation
import PropertyBased
import Testing
import VHDX
import VHDXChangeTracking
import VHDXExport
import VHDXTestSupport

/// Random programs of writes, zeroes, trims and resizes with exports between them, as streams
/// (full + incrementals) and as `.vhdx ← .avhdx` chains; every export point is then restored
/// (from the streams, from the chain, and by applying the incrementals one by one) and must
/// equal the byte model at that point, and `verify` must say so.
@Suite struct ExportFlowTests {
    enum Step: CustomStringConvertible {
        /// Does a change step to `lab`'s disk (offsets and lengths taken modulo its size; a shrink
        /// zeroes what it cuts first); export steps do nothing here.
        func change(_ lab: ExportLab) throws {
            let size = lab.model.count
            switch self {
            case .write(let o, let n): try lab.write(min(n, size - o % size), at: o % size)
            case .pattern(let o, let n): try lab.writePattern(min(n, size - o % size), at: o % size)
            case .zero(let o, let n):
                let at = o % size / 512 * 512
                try lab.zero(min(n, size - at), at: at)
            case .trim(let o, let n):
                let at = o % size
                try lab.trim(min(n, size - at), at: at)
            case .resize(let s):
                if s < size { try lab.zero(size - s, at: s) }
                try lab.resize(to: s)
            case .exportStream, .exportChain: break
            }
        }

        case write(Int, Int), pattern(Int, Int), zero(Int, Int), trim(Int, Int), resize(Int), exportStream, exportChain

        init(_ kind: Int, _ a: Int, _ b: Int) {
            let mib = 1 << 20
            switch kind {
            case 0, 1, 2: self = .write(a % (4 * mib), 1 + b % (300 << 10))
            case 3: self = .pattern(a % (4 * mib), 1 + b % (600 << 10))
            case 4: self = .zero(a % (4 * mib), 1 + b % (2 * mib))
            case 5: self = .trim(a % (4 * mib), 1 + b % (2 * mib))
            case 6: self = .resize((2 + b % 5) * mib + (a % 4) * 512)
            case 7: self = .exportChain
            default: self = .exportStream
            }
        }

        var description: String {
            switch self {
            case .write(let o, let n): "write(\(o),\(n))"
            case .pattern(let o, let n): "pattern(\(o),\(n))"
            case .zero(let o, let n): "zero(\(o),\(n))"
            case .trim(let o, let n): "trim(\(o),\(n))"
            case .resize(let s): "resize(\(s))"
            case .exportStream: "stream"
            case .exportChain: "chain"
            }
        }
    }

    static let program = zip(Gen.int(in: 0...9), Gen.int(in: 0...(1 << 26)), Gen.int(in: 0...(1 << 26))).array(of: 3...14)

    /// Runs `steps` on a fresh lab; returns the problems found.
    static func run(_ steps: [Step], seed: UInt64) throws -> [String] {
        let lab = try ExportLab(size: 4 << 20, seed: seed, name: "flow\(seed)")
        var problems: [String] = []
        var streams: [(name: String, model: [UInt8])] = []
        var chain: [(name: String, model: [UInt8])] = []
        var counter = 0
        func exportStream() throws {
            counter += 1
            let name = "s\(counter).vxs"
            try lab.export(name, base: streams.last?.name)
            streams.append((name, lab.model))
        }
        func exportChain() throws {
            counter += 1
            // A differencing image cannot be smaller than its parent: after a shrink the chain starts over.
            let shrank = chain.last.map { lab.model.count < $0.model.count } ?? false
            if chain.isEmpty || shrank {
                chain = []
                let name = "c\(counter).vhdx"
                try lab.export(name)
                chain.append((name, lab.model))
            } else {
                let name = "c\(counter).avhdx"
                try lab.export(name, base: chain.last!.name)
                chain.append((name, lab.model))
            }
        }
        for step in steps {
            switch step {
            case .write, .pattern, .zero, .trim, .resize: try step.change(lab)
            case .exportStream: try exportStream()
            case .exportChain: try exportChain()
            }
        }
        try exportStream()
        try exportChain()
        // Every stream point: restored from the full and its incrementals.
        for k in streams.indices {
            let out = lab.path("r\(k).vhdx")
            try Restorer.restore(to: out, from: streams[0...k].map { lab.path($0.name) })
            if try ExportLab.content(out) != streams[k].model { problems.append("restore of streams 0...\(k) differs from the model") }
            let v = try Verifier.verify(out, against: streams[0...k].map { lab.path($0.name) })
            if !v.identical { problems.append("verify of streams 0...\(k): differs at \(v.firstDifference!)") }
            try? FileManager.default.removeItem(atPath: out)
        }
        // Apply one by one onto a restore of the full export, and as a raw image.
        let applied = lab.path("applied.vhdx")
        try Restorer.restore(to: applied, from: [lab.path(streams[0].name)])
        for k in streams.indices.dropFirst() {
            try Applier.apply(lab.path(streams[k].name), to: applied)
            if try ExportLab.content(applied) != streams[k].model { problems.append("apply of stream \(k) differs from the model") }
        }
        let raw = lab.path("all.raw")
        try Restorer.restore(to: raw, from: streams.map { lab.path($0.name) })
        if ExportLab.fileBytes(raw) != streams.last!.model { problems.append("raw restore differs from the model") }
        // The chain: it reads as the model through the engine, and restores to it.
        for (k, c) in chain.enumerated() {
            if try ExportLab.content(lab.path(c.name)) != c.model { problems.append("chain layer \(k) (\(c.name)) reads differently from the model") }
        }
        let fromChain = lab.path("chain.vhdx")
        try Restorer.restore(to: fromChain, from: [lab.path(chain.last!.name)])
        if try ExportLab.content(fromChain) != chain.last!.model { problems.append("restore from the chain differs from the model") }
        return problems
    }

    @Test("random programs: every restore (streams, chain, apply, raw) equals the disk at its export")
    func randomPrograms() async {
        await propertyCheck(count: TestScale.count(12), input: ExportFlowTests.program) { raw in
            let steps = raw.map { Step($0.0, $0.1, $0.2) }
            let seed = UInt64(truncatingIfNeeded: raw.reduce(7) { $0 &* 31 &+ $1.1 })
            let problems = try ExportFlowTests.run(steps, seed: seed)
            #expect(problems.isEmpty, "\(steps): \(problems)")
        }
    }

    @Test("a scripted program with every step kind")
    func scripted() throws {
        let mib = 1 << 20
        let steps: [Step] = [.write(0, 3 * mib), .pattern(mib, 200 << 10), .exportChain, .exportStream,
                             .zero(512 << 10, 300 << 10), .write(4 * mib - 1000, 1000), .exportStream, .exportChain,
                             .resize(6 * mib), .write(5 * mib, 70000), .exportStream, .exportChain,
                             .trim(0, 2 * mib), .exportStream, .resize(2 * mib + 512), .exportChain, .exportStream]
        let problems = try ExportFlowTests.run(steps, seed: 42)
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test("an incremental carries only what changed: its data is the changed granules, not the disk")
    func incrementalIsSmall() throws {
        let lab = try ExportLab(size: 8 << 20)
        try lab.write(6 << 20, at: 0)
        let full = try lab.export("full.vxs")
        try lab.write(100, at: 3 << 20)
        let inc = try lab.export("inc.vxs", base: "full.vxs")
        #expect(full.dataBytes == 6 << 20)
        #expect(inc.dataBytes == 64 << 10, "one granule changed, \(inc.dataBytes) bytes exported")
        #expect(inc.scannedBytes == 64 << 10)
        #expect(inc.header.baseID == full.header.targetID)
        #expect(inc.header.baseStreamID == full.header.streamID)
    }
}
