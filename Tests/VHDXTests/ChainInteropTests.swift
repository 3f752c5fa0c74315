import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

/// Differencing chains that `vhdx` builds and writes, depth 1 to 8, read back against a raw
/// model by the engine, by `vhdx convert -`, by libvhdi (pyvhdi, a set_parent chain) and by
/// 7-Zip; every layer passes `vhdx check`; the flattened top passes `qemu-img check` and
/// `qemu-img compare` with the model. (qemu refuses differencing VHDX altogether, so it only
/// sees flattened images.)
///
/// Each child gets the same kinds of writes, at offsets rotated per layer so that layers
/// overlap in varied ways: unaligned partial-block writes (one byte, across a block boundary),
/// whole-block writes (NOT_PRESENT → FULLY_PRESENT, PARTIALLY_PRESENT → FULLY_PRESENT), more
/// sectors of a partial block, zeros over parent data (partial: per-sector bits; whole: ZERO),
/// trims (whole block: UNMAPPED, reads zeros, never the parent; partial: no effect), writes
/// into ZERO and UNMAPPED blocks (the rest must stay zeros), and, for children larger than
/// their parent, writes straddling and past the parent's end.
@Suite("Chain interop", .serialized)
struct ChainInteropTests {
    typealias Op = WriteInteropTests.Op
    typealias Model = WriteInteropTests.Model
    static let MiB: UInt64 = 1 << 20

    struct Child: Sendable {
        /// nil: the parent's size.
        let size: UInt64?
        let blockSize: UInt64
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let logical: UInt64
        let baseSize: UInt64
        let baseBlockSize: UInt64
        let baseFixed: Bool
        let children: [Child]
        var testDescription: String {
            "depth \(children.count), \(logical)-byte sectors, base \(baseSize >> 20) MiB \(baseFixed ? "fixed" : "dynamic") \(baseBlockSize >> 20)M blocks, children "
                + children.map { "\($0.size.map { "\($0 >> 20) MiB" } ?? "=")/\($0.blockSize >> 20)M" }.joined(separator: " ")
        }
    }

    static let cases: [Case] = [
        // The base's blocks larger than the child's.
        Case(logical: 512, baseSize: 64 * MiB, baseBlockSize: 32 * MiB, baseFixed: false,
             children: [Child(size: nil, blockSize: 2 * MiB)]),
        Case(logical: 4096, baseSize: 64 * MiB, baseBlockSize: 2 * MiB, baseFixed: true,
             children: [Child(size: nil, blockSize: 1 * MiB), Child(size: 80 * MiB, blockSize: 2 * MiB)]),
        // 65 MiB: the parent ends in the middle of a child's 2 MiB block.
        Case(logical: 512, baseSize: 65 * MiB, baseBlockSize: 1 * MiB, baseFixed: false,
             children: [Child(size: 72 * MiB, blockSize: 2 * MiB), Child(size: nil, blockSize: 1 * MiB), Child(size: 96 * MiB, blockSize: 2 * MiB)]),
        Case(logical: 4096, baseSize: 64 * MiB, baseBlockSize: 1 * MiB, baseFixed: false,
             children: [Child(size: nil, blockSize: 2 * MiB), Child(size: 72 * MiB, blockSize: 1 * MiB), Child(size: nil, blockSize: 2 * MiB),
                        Child(size: nil, blockSize: 1 * MiB), Child(size: 80 * MiB, blockSize: 2 * MiB)]),
        Case(logical: 512, baseSize: 64 * MiB, baseBlockSize: 2 * MiB, baseFixed: false,
             children: [Child(size: nil, blockSize: 1 * MiB), Child(size: nil, blockSize: 2 * MiB), Child(size: 72 * MiB, blockSize: 1 * MiB),
                        Child(size: nil, blockSize: 2 * MiB), Child(size: nil, blockSize: 1 * MiB), Child(size: 96 * MiB, blockSize: 2 * MiB),
                        Child(size: nil, blockSize: 1 * MiB), Child(size: nil, blockSize: 2 * MiB)]),
    ]

    // MARK: - Writes

    /// The writes into child `layer` (1-based) of `size` bytes in blocks of `b` over a parent
    /// of `parentSize` bytes. Offsets are relative to a block-aligned start rotated per layer.
    static func ops(layer: Int, blockSize b: UInt64, size s: UInt64, parentSize ps: UInt64) -> [Op] {
        var list: [Op] = []
        func add(_ make: (UInt64, UInt64) -> Op, _ o: UInt64, _ l: UInt64) {
            guard o < s else { return }
            list.append(make(o, min(l, s - o)))
        }
        let i = UInt64(layer)
        let r = (i * 5 * MiB) % (s / 2) / b * b
        let k = i * 13
        let p = UInt8(truncatingIfNeeded: 0x10 * layer + 1)
        // Unaligned, across the boundary of blocks 0 and 1 (both NOT_PRESENT: partial blocks).
        add({ .pattern(p, $0, $1) }, r + b - 777 - k, 5000)
        // One byte: widened to its sector with the bytes the chain holds there.
        add({ .pattern(p &+ 1, $0, $1) }, r + 3 * b + 100 + k, 1)
        // Random bytes from an odd offset: the second half of block 4, all of 5, a bit of 6.
        add({ .input(seed: i * 10 + 1, $0, $1, stdin: false) }, r + 4 * b + b / 2 + 3, b + b / 2 + 17)
        // A whole block at once: FULLY_PRESENT without a bitmap.
        add({ .pattern(p &+ 2, $0, $1) }, r + 7 * b, b)
        // Zeros over parent data: a partial range (sectors written as zeros, bits set)…
        add({ .zero($0, $1) }, r + 8 * b + 1000 + k, 70000)
        // …and a whole block (ZERO: reads zeros, never the parent).
        add({ .zero($0, $1) }, r + 9 * b, b)
        // A whole block trimmed (UNMAPPED: zeros, never the parent); a partial trim does nothing.
        add({ .trim($0, $1) }, r + 10 * b, b)
        add({ .trim($0, $1) }, r + 11 * b + 100, 5000)
        // Into the ZERO and the UNMAPPED block: their other sectors must keep reading zeros.
        add({ .pattern(p &+ 3, $0, $1) }, r + 9 * b + 3 * 4096 + 5, 3000)
        add({ .pattern(p &+ 4, $0, $1) }, r + 11 * b - 2000, 1000)
        // More sectors of a partial block, unaligned.
        add({ .pattern(p &+ 5, $0, $1) }, r + 4 * b + 12345, 777)
        // A partial block (1, from the first write) written whole.
        add({ .pattern(p &+ 6, $0, $1) }, r + b, b)
        // Zeros with partial ends and two whole blocks between.
        add({ .zero($0, $1) }, r + 12 * b - 512 - k, 2 * b + 1024)
        // Zeros inside a FULLY_PRESENT block.
        add({ .zero($0, $1) }, r + 7 * b + 4096, 4096)
        // Random bytes through stdin, from an odd offset in the second half.
        add({ .input(seed: i * 10 + 2, $0, $1, stdin: true) }, s / 2 + 333 + k, b + 5)
        // A whole block trimmed that nothing writes again (the first one was written into).
        add({ .trim($0, $1) }, r + 15 * b, b)
        if s > ps {
            // Straddling the parent's end, and zeros past it (already zeros there).
            add({ .pattern(p &+ 7, $0, $1) }, ps - 3000, 6000)
            add({ .zero($0, $1) }, ps + 1000, 5000)
        }
        // The last bytes of the disk.
        add({ .pattern(p &+ 8, $0, $1) }, s - 4196, 4196)
        return list
    }

    /// `op` through the engine on an open writable chain, and on the model (as
    /// `WriteInteropTests.apply` does through the CLI).
    static func apply(_ op: Op, to image: VHDXFile, model: Model) throws {
        switch op {
        case let .pattern(byte, o, l):
            try image.write([UInt8](repeating: byte, count: Int(l)), at: o)
            try model.fill(byte, at: o, length: l)
        case let .input(seed, o, l, _):
            let bytes = WriteInteropTests.randomBytes(seed: seed, count: Int(l))
            try image.write(bytes, at: o)
            try model.write(bytes, at: o)
        case let .zero(o, l):
            try image.writeZeroes(at: o, length: l)
            try model.fill(0, at: o, length: l)
        case let .trim(o, l):
            try image.trim(at: o, length: l)
            // Whole blocks (the last one may be partial) read as zeros; partial ones are kept.
            let b = image.blockSize
            var v = o
            while v < o + l {
                let blockStart = v / b * b
                let blockEnd = min(blockStart + b, model.size)
                let end = min(o + l, blockEnd)
                if v == blockStart && end == blockEnd { try model.fill(0, at: v, length: end - v) }
                v = end
            }
        }
    }

    // MARK: - Oracles

    /// SHA-256 of the first `limit` bytes of a file.
    static func prefixSHA(_ path: String, _ limit: UInt64) throws -> String {
        let r = try Shell.run("""
            python3 -c 'import hashlib,sys
            f=open(sys.argv[1],"rb"); n=int(sys.argv[2]); h=hashlib.sha256()
            while n>0:
                b=f.read(min(8<<20,n))
                if not b: break
                h.update(b); n-=len(b)
            print(h.hexdigest())' '\(path)' \(limit)
            """)
        return String(r.stdout.prefix(64))
    }

    /// libvhdi over the chain `paths` (top first, each layer's parent set explicitly): the media
    /// size, the SHA-256 of [0, limit), then either the SHA-256 of the whole disk or the offset
    /// of the first 1 MiB read past `limit` that failed.
    static func libvhdi(_ paths: [String], limit: UInt64) throws -> (size: UInt64, prefix: String, full: String?, failedAt: UInt64?) {
        let r = try Shell.run("""
            /usr/bin/python3 -c 'import pyvhdi,hashlib,sys
            limit=int(sys.argv[1]); fs=[]
            for p in sys.argv[2:]:
                f=pyvhdi.file(); f.open(p); fs.append(f)
            for a,b in zip(fs,fs[1:]): a.set_parent(b)
            f=fs[0]; n=f.get_media_size(); h=hashlib.sha256(); o=0
            while o<limit:
                b=f.read_buffer(min(1<<20,limit-o))
                if not b: raise SystemExit("short read at %d" % o)
                h.update(b); o+=len(b)
            print(n); print(h.hexdigest())
            try:
                while o<n:
                    b=f.read_buffer(min(1<<20,n-o))
                    if not b: raise IOError("short read")
                    h.update(b); o+=len(b)
                print("full", h.hexdigest())
            except Exception as e:
                print("failed", o)' \(limit) \(paths.map { "'\($0)'" }.joined(separator: " "))
            """)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        guard lines.count == 3, let size = UInt64(lines[0]) else { throw TestFailure("libvhdi output: \(r.stdout)\(r.stderr)") }
        let last = lines[2].split(separator: " ").map(String.init)
        return (size, lines[1], last[0] == "full" ? last[1] : nil, last[0] == "failed" ? UInt64(last[1]) : nil)
    }

    /// 7-Zip's extraction of `top` (it follows the parent locators itself): byte count and SHA-256.
    static func sevenZip(_ top: String) throws -> (count: UInt64, sha: String, stderr: String) {
        let err = Fixtures.tempPath("7z.err")
        defer { unlink(err) }
        let r = try Shell.run("""
            7zz x -tvhdx -so '\(top)' 2>'\(err)' | python3 -c 'import hashlib,sys
            h=hashlib.sha256(); n=0
            while True:
                b=sys.stdin.buffer.read(8<<20)
                if not b: break
                h.update(b); n+=len(b)
            print(n, h.hexdigest())'
            """)
        let parts = r.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard parts.count == 2, let n = UInt64(parts[0]) else { throw TestFailure("7-Zip output: \(r.stdout)") }
        return (n, parts[1], (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }

    /// Every check on the chain `layers` (top first) against the raw `model` of the top: the
    /// engine and `vhdx compare` always; `vhdx convert -`, libvhdi and 7-Zip with `oracles`
    /// (the top of each chain: every layer would cost minutes).
    static func verify(_ layers: [String], model: Model, libvhdiView: Model, oracles: Bool, label: String,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let vhdx = try vhdxBinary()
        let top = layers[0]
        let expected = oracles ? try Shell.sha256(file: model.path) : ""

        // The engine: the whole disk, and reads at random unaligned places.
        do {
            let image = try ChainReadTests.openChain(top)
            #expect(image.chain.map(\.storage.name) == layers, "\(label): chain", sourceLocation: sourceLocation)
            #expect(image.virtualSize == model.size, sourceLocation: sourceLocation)
            // (Without oracles, `vhdx compare` below reads the whole disk through the engine.)
            if oracles { #expect(try contentSHA256(image) == expected, "\(label): engine read differs from the model", sourceLocation: sourceLocation) }
            // Into buffers full of 0xee, so that a range the engine forgets to fill shows; at
            // random places, and across the end of every smaller layer below.
            var rng = SplitMix(seed: model.size &+ UInt64(layers.count))
            var reads: [(UInt64, Int)] = image.chain.map(\.virtualSize).filter { $0 < model.size }.map { ($0 - 4096 - 7, 3 * 4096 + 12) }
            for _ in 0..<200 {
                let o = rng.next() % model.size
                reads.append((o, Int(min(model.size - o, 1 + rng.next() % (256 << 10)))))
            }
            var bad: [String] = []
            for (o, n) in reads {
                var got = [UInt8](repeating: 0xee, count: n)
                try got.withUnsafeMutableBytes { try image.read(into: $0, at: o) }
                let want = model.read(at: o, count: n)
                let same = got.withUnsafeBytes { g in want.withUnsafeBytes { w in memcmp(g.baseAddress!, w.baseAddress!, n) == 0 } }
                if !same { bad.append("\(o)+\(n)") }
            }
            #expect(bad.isEmpty, "\(label): engine reads differ from the model at \(bad.prefix(5))", sourceLocation: sourceLocation)
        }

        // The CLI: compare with the model, and convert to stdout.
        let compare = try Shell.run("'\(vhdx)' compare '\(top)' '\(model.path)'", allowFailure: true)
        #expect(compare.status == 0, "\(label): vhdx compare: \(compare.stdout)\(compare.stderr)", sourceLocation: sourceLocation)
        guard oracles else { return }
        let stream = try Shell.run("set -o pipefail; '\(vhdx)' convert '\(top)' - | \(Shell.sha256Command) -", allowFailure: true)
        #expect(stream.status == 0 && String(stream.stdout.prefix(64)) == expected, "\(label): vhdx convert - differs: \(stream.stderr)",
                sourceLocation: sourceLocation)

        // The oracles. Known limit of both (libvhdi 20210425, 7-Zip 26.02), seen on every child
        // larger than the smallest layer below it: libvhdi fails any read that falls through to
        // a layer past that layer's end ("unable to read data from parent file"); 7-Zip ends
        // its output at the first such byte ("Unexpected end of data"), which lies at or after
        // the smallest layer's end (the child may hold sectors past it). Both are compared over
        // what they return; libvhdi must at least return [0, smallest layer size).
        let sizes = try layers.map { layer in try ChainReadTests.settled { try WriteInteropTests.shape(layer) }.size }
        let limit = sizes.min()!
        let modelPrefix = limit == model.size ? expected : try prefixSHA(model.path, limit)
        // libvhdi also reads ZERO, UNMAPPED and UNDEFINED blocks of a differencing layer from
        // the parent instead of as zeros (docs/vhdx-format.md §9: every state below 6 counts as
        // unallocated), and within them reads sectors whose bitmap bit is still set from the
        // file at the entry's offset (0: the header). `libvhdiView` is the model with exactly
        // those changes; libvhdi must return one of the two (today the view), nothing else.
        let viewSHA = try Shell.sha256(file: libvhdiView.path)
        let viewPrefix = limit == model.size ? viewSHA : try prefixSHA(libvhdiView.path, limit)
        let lv = try libvhdi(layers, limit: limit)
        #expect(lv.size == model.size, "\(label): libvhdi media size", sourceLocation: sourceLocation)
        #expect(lv.prefix == modelPrefix || lv.prefix == viewPrefix, "\(label): libvhdi differs from the model in [0, \(limit))",
                sourceLocation: sourceLocation)
        if let full = lv.full {
            #expect(full == expected || full == viewSHA, "\(label): libvhdi differs from the model", sourceLocation: sourceLocation)
        } else {
            #expect(limit < model.size && lv.failedAt.map { $0 >= limit } == true,
                    "\(label): libvhdi failed at \(lv.failedAt.map(String.init) ?? "?") within the part it can read", sourceLocation: sourceLocation)
        }

        let sz = try sevenZip(top)
        if sz.count == model.size {
            #expect(sz.sha == expected, "\(label): 7-Zip differs from the model", sourceLocation: sourceLocation)
        } else {
            // Where it stops: the first byte at or past the smallest layer's end that no layer
            // holds (the engine resolves it as not present in a differencing layer).
            let image = try ChainReadTests.openChain(top)
            var stop: UInt64?
            try image.forEachResolvedExtent(from: limit) { (e) throws(VHDXError) in
                if stop == nil, e.kind == .notPresent, image.chain[e.layer].diskType == .differencing { stop = e.virtualOffset }
            }
            #expect(limit < model.size && sz.count == stop && sz.stderr.contains("Unexpected end of data"),
                    "\(label): 7-Zip returned \(sz.count) of \(model.size) bytes (smallest layer \(limit), first byte no layer holds \(stop.map(String.init) ?? "none")): \(sz.stderr)",
                    sourceLocation: sourceLocation)
            #expect(sz.sha == (try prefixSHA(model.path, sz.count)), "\(label): 7-Zip differs from the model in [0, \(sz.count))",
                    sourceLocation: sourceLocation)
        }
    }

    /// What libvhdi returns for the chain topped by `path` (see `verify`), block by block of
    /// the layer's own BAT, its bytes taken from the models:
    /// - FULLY_PRESENT: the layer's data (the model);
    /// - PARTIALLY_PRESENT: sectors with bit 1 from the model, the others what libvhdi returns
    ///   for the parent (`parentView`);
    /// - every other state, ZERO and UNMAPPED included: the parent's view, except sectors whose
    ///   sector-bitmap bit is still set from an earlier PARTIALLY_PRESENT life of the block,
    ///   which libvhdi reads from the file at the entry's FileOffsetMB (0 here: the file header);
    /// and zeros past the parent's end (where libvhdi fails).
    static func libvhdiView(layer path: String, model: Model, parentView: Model?) throws -> Model {
        let view = try Model(copying: model.path)
        guard let parentView else { return view }
        let f = try ChainReadTests.open(path)
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let lss = UInt64(f.layout.logicalSectorSize)
        func fromParent(_ start: UInt64, _ end: UInt64) throws {
            let inParent = min(end, max(start, parentView.size))
            if start < inParent { try view.write(parentView.read(at: start, count: Int(inParent - start)), at: start) }
            if inParent < end { try view.fill(0, at: inParent, length: end - inParent) }
        }
        for block in 0..<(f.virtualSize + f.blockSize - 1) / f.blockSize {
            let entry = try f.payloadEntry(block: block)
            let start = block * f.blockSize, end = min(start + f.blockSize, f.virtualSize)
            if entry.state == PayloadBlockState.fullyPresent.rawValue { continue }
            let sb = try f.sectorBitmapEntry(chunk: block / f.geometry.chunkRatio)
            guard sb?.state == SectorBitmapState.present.rawValue else { try fromParent(start, end); continue }
            let sectors = (end - start) / lss
            let bits = try f.sectorBitmapBytes(block: block, sectors: 0...sectors - 1)
            func bit(_ s: UInt64) -> Bool { bits[Int(s / 8)] >> (s % 8) & 1 == 1 }
            var s: UInt64 = 0
            while s < sectors {  // a run of equal bits at a time
                var e = s + 1
                while e < sectors, bit(e) == bit(s) { e += 1 }
                let (a, b) = (start + s * lss, start + e * lss)
                if !bit(s) {
                    try fromParent(a, b)
                } else if entry.state != PayloadBlockState.partiallyPresent.rawValue {
                    var stale = [UInt8](repeating: 0, count: Int(b - a))
                    _ = stale.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(entry.fileOffset + a - start)) }
                    try view.write(stale, at: a)
                }
                s = e
            }
        }
        return view
    }

    // MARK: - The test

    @Test("a chain built and written by vhdx reads as the model through the engine, the CLI, libvhdi and 7-Zip", arguments: cases)
    func chain(_ c: Case) throws {
        try Shell.require("qemu-img"); try Shell.require("7zz")
        let vhdx = try vhdxBinary()
        let dir = try ChainReadTests.freshDir("ci")
        defer { try? FileManager.default.removeItem(atPath: dir) }

        // The base: random data over most of it, a 2 MiB hole in the middle and a 4 MiB tail
        // never written (NOT_PRESENT, or zeros of a fixed disk).
        let base = dir + "/base.vhdx"
        try Shell.run("'\(vhdx)' create '\(base)' \(c.baseSize) --block-size \(c.baseBlockSize) --logical-sector-size \(c.logical)\(c.baseFixed ? " --fixed" : "")")
        var models = [try Model(size: c.baseSize)]
        let hole = c.baseSize / 2
        for op in [Op.input(seed: 100, 0, hole, stdin: false), .input(seed: 101, hole + 2 * ChainInteropTests.MiB, c.baseSize - hole - 6 * ChainInteropTests.MiB, stdin: false)] {
            try WriteInteropTests.apply(op, image: base, model: models[0], blockSize: c.baseBlockSize, fixed: c.baseFixed)
        }

        var layers = [base]
        var views = [try Model(copying: models[0].path)]
        var hashes: [String] = []
        for (n, child) in c.children.enumerated() {
            let layer = n + 1
            let parent = layers.last!, parentModel = models.last!
            let path = dir + "/c\(layer).avhdx"
            let size = child.size ?? parentModel.size
            try Shell.run("'\(vhdx)' create '\(path)' --parent '\(parent)'\(child.size.map { " \($0)" } ?? "") --block-size \(child.blockSize)")

            // The model of the child starts as its parent's content, zeros past the parent's end.
            let grown = Fixtures.tempPath("grown.raw")
            try Shell.run("cp --sparse=always '\(parentModel.path)' '\(grown)' && truncate -s \(size) '\(grown)'")
            let model = try Model(copying: grown)
            unlink(grown)
            models.append(model)
            layers.append(path)

            // Layers 1 and 5 are written with `vhdx write` (one process and session per write),
            // the others in a single writable session of the engine (faster: a process per
            // write costs seconds per layer).
            let ops = ChainInteropTests.ops(layer: layer, blockSize: child.blockSize, size: size, parentSize: parentModel.size)
            var zerosOverData = 0
            var session = layer == 1 || layer == 5 ? nil : try ChainReadTests.openChainWritable(path)
            for op in ops {
                if case let .zero(o, l) = op, o < parentModel.size, model.read(at: o, count: Int(min(l, parentModel.size - o))).contains(where: { $0 != 0 }) {
                    zerosOverData += 1
                }
                if let session {
                    try ChainInteropTests.apply(op, to: session, model: model)
                } else {
                    try WriteInteropTests.apply(op, image: path, model: model, blockSize: child.blockSize, fixed: false)
                }
            }
            try session?.close()
            session = nil  // lets go of its exclusive lock
            #expect(zerosOverData >= 2, "layer \(layer): only \(zerosOverData) zero writes met parent data")

            // (Opened in this process only once the writes are done: see ChainReadTests.settled.)
            let shape = try ChainReadTests.settled { try WriteInteropTests.shape(path) }
            #expect(shape.type == .differencing && shape.size == size && shape.blockSize == child.blockSize && shape.logical == c.logical)
            // The writes produced every block state a child can hold.
            do {
                let counts = try ChainReadTests.open(path).allocationSummary().blockCounts
                for kind in [Extent.Kind.data, .partial, .zero, .unmapped, .notPresent] {
                    #expect((counts[kind] ?? 0) > 0, "layer \(layer): no \(kind) blocks: \(counts)")
                }
            }
            let view = try ChainInteropTests.libvhdiView(layer: path, model: model, parentView: views.last!)
            views.append(view)
            try ChainInteropTests.verify(layers.reversed(), model: model, libvhdiView: view, oracles: layer == c.children.count,
                                         label: "\(c.testDescription), layer \(layer)")
            hashes.append(try Shell.sha256(file: path))
        }

        // Every layer checks clean, and none changed after its own writes: children never
        // write their parents.
        for path in layers {
            let check = try Shell.run("'\(vhdx)' check '\(path)'", allowFailure: true)
            #expect(check.status == 0, "vhdx check \(path): \(check.stdout)\(check.stderr)")
        }
        #expect(try layers.dropFirst().map { try Shell.sha256(file: $0) } == hashes, "a layer changed after its children were written")

        // Flattened: a standalone image with the model's content, which qemu accepts (qemu
        // opens 512-byte logical sectors only, so a 4096 chain is also flattened to 512).
        let top = layers.last!, model = models.last!
        let flat = dir + "/flat.vhdx"
        try Shell.run("'\(vhdx)' convert '\(top)' '\(flat)'")
        let flatShape = try ChainReadTests.settled { try WriteInteropTests.shape(flat) }
        #expect(flatShape.type == .dynamic && flatShape.logical == c.logical && flatShape.size == model.size)
        for args in ["compare '\(flat)' '\(model.path)'", "check '\(flat)'", "compare '\(top)' '\(flat)'"] {
            let r = try Shell.run("'\(vhdx)' \(args)", allowFailure: true)
            #expect(r.status == 0, "vhdx \(args): \(r.stdout)\(r.stderr)")
        }
        var forQemu = flat
        if c.logical != 512 {
            forQemu = dir + "/flat512.vhdx"
            try Shell.run("'\(vhdx)' convert '\(top)' '\(forQemu)' --logical-sector-size 512")
        }
        let qcheck = try Shell.run("qemu-img check -f vhdx '\(forQemu)'", allowFailure: true)
        #expect(qcheck.status == 0, "qemu-img check: \(qcheck.stdout)\(qcheck.stderr)")
        let qcompare = try Shell.run("qemu-img compare -f vhdx -F raw '\(forQemu)' '\(model.path)'", allowFailure: true)
        #expect(qcompare.status == 0, "qemu-img compare: \(qcompare.stdout)\(qcompare.stderr)")
        #expect(try OracleInteropTests.libvhdi(flat) == (try Shell.sha256(file: model.path)))
    }

    // MARK: - Writing into a Windows-made child

    @Test("writes into the Hyper-V checkpoint (its own sector bitmaps and block layout) read back through the engine and libvhdi; nothing else changes")
    func windowsChildTakesWrites() throws {
        let (dir, child) = try ChainReadTests.windowsChain()
        let parent = dir + "/" + ChainReadTests.parentName
        let parentSHA = try Shell.sha256(file: parent)
        let MiB = ChainInteropTests.MiB
        // The blocks touched (2 MiB each; all PARTIALLY_PRESENT in the fixture except block 1,
        // which is NOT_PRESENT), read whole before and after.
        let windows: [(UInt64, Int)] = [(0, Int(4 * MiB)), (0x2000_0000, Int(2 * MiB)), (0x7360_0000, Int(2 * MiB)), (0x7f40_0000, Int(2 * MiB))]
        func touched(_ o: UInt64, _ n: UInt64) -> Bool { windows.contains { o < $0.0 + UInt64($0.1) && $0.0 < o + n } }
        var expected: [[UInt8]] = []
        var untouched: [(UInt64, [UInt8])] = []
        let guid: GUID
        do {
            let image = try ChainReadTests.openChain(child)
            guid = image.header.dataWriteGUID
            #expect(try image.payloadEntry(block: 0).state == PayloadBlockState.partiallyPresent.rawValue)
            #expect(try image.payloadEntry(block: 1).state == PayloadBlockState.notPresent.rawValue)
            // The bytes before the writes come from libvhdi (the oracle), not from the engine's
            // read of the same windows; the engine must then agree with it.
            expected = try ChainInteropTests.libvhdiWindows(child: child, parent: parent, windows)
            #expect(try windows.map { try image.read(at: $0.0, count: $0.1) } == expected, "the engine reads the Windows chain differently from libvhdi")
            try image.forEachResolvedExtent { (e) throws(VHDXError) in
                if e.kind == .data && !touched(e.virtualOffset, e.length) { untouched.append((e.virtualOffset, try image.read(at: e.virtualOffset, count: Int(e.length)))) }
            }
            #expect(untouched.count > 100)
        }
        func put(_ window: Int, _ at: UInt64, _ bytes: [UInt8]) {
            let o = Int(at - windows[window].0)
            expected[window].replaceSubrange(o..<o + bytes.count, with: bytes)
        }
        do {
            let w = try ChainReadTests.openChainWritable(child)
            // Unaligned, over Hyper-V's first data run (0x100400..<0x100800) and past it.
            let a = [UInt8](repeating: 0xa7, count: 1000)
            try w.write(a, at: 0x10_0200); put(0, 0x10_0200, a)
            // Into block 1 (NOT_PRESENT), unaligned.
            let b = WriteInteropTests.randomBytes(seed: 77, count: 3000)
            try w.write(b, at: 2 * MiB + 700); put(0, 2 * MiB + 700, b)
            // Zeros over part of Hyper-V's data at 0x20100000 (the block stays partial).
            try w.writeZeroes(at: 0x2010_1000, length: 0x2000); put(1, 0x2010_1000, [UInt8](repeating: 0, count: 0x2000))
            // A whole partial block written: FULLY_PRESENT.
            let c = WriteInteropTests.randomBytes(seed: 78, count: Int(2 * MiB))
            try w.write(c, at: 0x7360_0000); put(2, 0x7360_0000, c)
            // A whole partial block trimmed: UNMAPPED, zeros.
            try w.trim(at: 0x7f40_0000, length: 2 * MiB); put(3, 0x7f40_0000, [UInt8](repeating: 0, count: Int(2 * MiB)))
            try w.close()
        }
        let check = try Shell.run("'\(try vhdxBinary())' check '\(child)'", allowFailure: true)
        #expect(check.status == 0, "vhdx check: \(check.stdout)\(check.stderr)")
        let image = try ChainReadTests.openChain(child)
        #expect(image.header.dataWriteGUID != guid)
        #expect(try image.payloadEntry(block: 0x7360_0000 / (2 * MiB)).state == PayloadBlockState.fullyPresent.rawValue)
        #expect(try image.payloadEntry(block: 0x7f40_0000 / (2 * MiB)).state == PayloadBlockState.unmapped.rawValue)
        for (i, (o, n)) in windows.enumerated() {
            #expect(try image.read(at: o, count: n) == expected[i], "window \(i) at \(o)")
        }
        let changed = try untouched.filter { (o, bytes) in try image.read(at: o, count: bytes.count) != bytes }.map(\.0)
        #expect(changed.isEmpty, "data outside the written blocks changed at \(changed.prefix(5))")
        #expect(try Shell.sha256(file: parent) == parentSHA)

        // libvhdi reads the same windows, but the trimmed one: there it shows the UNMAPPED
        // block's stale sector bits as data from file offset 0 (see `libvhdiView`).
        let expectedFile = Fixtures.tempPath("expected.bin")
        defer { unlink(expectedFile) }
        guard FileManager.default.createFile(atPath: expectedFile, contents: Data(expected[0..<3].joined())) else { throw TestFailure("cannot write \(expectedFile)") }
        let r = try Shell.run("""
            /usr/bin/python3 -c 'import pyvhdi,sys
            c=pyvhdi.file(); c.open(sys.argv[1]); p=pyvhdi.file(); p.open(sys.argv[2]); c.set_parent(p)
            e=open(sys.argv[3],"rb")
            for w in sys.argv[4:]:
                o,n=map(int,w.split(":")); c.seek_offset(o,0)
                print("same" if c.read_buffer(n)==e.read(n) else "differs at %d" % o)' '\(child)' '\(parent)' '\(expectedFile)' \(windows[0..<3].map { "\($0.0):\($0.1)" }.joined(separator: " "))
            """)
        #expect(r.stdout.split(separator: "\n") == ["same", "same", "same"], "libvhdi: \(r.stdout)\(r.stderr)")
    }

    /// The bytes libvhdi reads at `windows` of the chain `child` ← `parent`.
    static func libvhdiWindows(child: String, parent: String, _ windows: [(UInt64, Int)]) throws -> [[UInt8]] {
        let out = Fixtures.tempPath("libvhdi-windows.bin")
        defer { unlink(out) }
        try Shell.run("""
            /usr/bin/python3 -c 'import pyvhdi,sys
            c=pyvhdi.file(); c.open(sys.argv[1]); p=pyvhdi.file(); p.open(sys.argv[2]); c.set_parent(p)
            o=open(sys.argv[3],"wb")
            for w in sys.argv[4:]:
                at,n=map(int,w.split(":")); c.seek_offset(at,0); b=c.read_buffer(n)
                assert len(b)==n, "short read at %d" % at
                o.write(b)' '\(child)' '\(parent)' '\(out)' \(windows.map { "\($0.0):\($0.1)" }.joined(separator: " "))
            """)
        let all = [UInt8](FileManager.default.contents(atPath: out) ?? Data())
        var at = 0
        return windows.map { w in defer { at += w.1 }; return Array(all[min(at, all.count)..<min(at + w.1, all.count)]) }
    }

    // MARK: - Sector bitmaps past the first chunk

    /// (logical sector size, disk size): a chunk (one sector bitmap block) covers 2^23 sectors,
    /// 4 GiB of 512-byte or 32 GiB of 4096-byte sectors; both disks reach into a third chunk.
    static let chunkCases: [(UInt64, UInt64)] = [(512, 9 << 30), (4096, 65 << 30)]

    @Test("a sparse child reaching into its third chunk: writes across chunk boundaries set the right chunk's bitmap; engine, vhdx compare and libvhdi agree",
          arguments: chunkCases)
    func chunks(_ c: (UInt64, UInt64)) throws {
        let (logical, size) = c
        let MiB = ChainInteropTests.MiB
        let chunk = (UInt64(1) << 23) * logical
        let vhdx = try vhdxBinary()
        let dir = try ChainReadTests.freshDir("chunks")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = dir + "/base.vhdx", child = dir + "/child.avhdx"
        try Shell.run("'\(vhdx)' create '\(base)' \(size) --block-size 32M --logical-sector-size \(logical)")
        let model = try Model(size: size)
        // Parent data around both chunk boundaries and at the end.
        let baseOps: [Op] = [.input(seed: 200, chunk - 3 * MiB, 6 * MiB, stdin: false), .input(seed: 201, 2 * chunk - 2 * MiB, 5 * MiB, stdin: false),
                             .pattern(0x3d, size - 3 * MiB, 3 * MiB)]
        for op in baseOps { try WriteInteropTests.apply(op, image: base, model: model, blockSize: 32 * MiB, fixed: false) }
        try Shell.run("'\(vhdx)' create '\(child)' --parent '\(base)' --block-size 1M")
        let ops: [Op] = [
            // Across the boundary of chunks 0 and 1, unaligned (two partial blocks, two bitmaps).
            .pattern(0x51, chunk - 3000, 6000),
            // Zeros over parent data in chunk 1, partial: bits set in chunk 1's bitmap.
            .zero(chunk + 5000, 3 * 4096),
            // A whole block in chunk 1, and a partial one next to it.
            .input(seed: 202, chunk + 2 * MiB, MiB, stdin: false),
            .input(seed: 203, chunk + 3 * MiB + 4096 + 17, 10_000, stdin: false),
            // Across chunks 1 and 2, and in the last block of the disk.
            .pattern(0x52, 2 * chunk - 512 - 3, 1030),
            .pattern(0x53, size - 5000, 4000),
        ]
        do {
            let w = try ChainReadTests.openChainWritable(child)
            for op in ops { try ChainInteropTests.apply(op, to: w, model: model) }
            try w.close()
        }
        let check = try Shell.run("'\(vhdx)' check '\(child)'", allowFailure: true)
        #expect(check.status == 0, "vhdx check: \(check.stdout)\(check.stderr)")
        let compare = try Shell.run("'\(vhdx)' compare '\(child)' '\(model.path)'", allowFailure: true)
        #expect(compare.status == 0, "vhdx compare: \(compare.stdout)\(compare.stderr)")

        let image = try ChainReadTests.openChain(child)
        let chunkRatio = image.geometry.chunkRatio
        #expect((chunkRatio * image.blockSize) == chunk)
        // Every chunk got its own bitmap block, at a distinct place.
        let bitmaps = try (0..<3).map { try #require(try image.sectorBitmapEntry(chunk: $0)) }
        #expect(bitmaps.allSatisfy { $0.state == SectorBitmapState.present.rawValue })
        #expect(Set(bitmaps.map(\.fileOffsetMB)).count == 3)
        // The bits of the first write: the last sectors of chunk 0, the first of chunk 1.
        let lastOf0 = (chunk / MiB) - 1, firstOf1 = chunk / MiB
        let tail = try image.sectorBitmapBytes(block: lastOf0, sectors: (MiB / logical - 8)...(MiB / logical - 1))
        #expect(tail.last! >> 7 == 1, "the last sector of chunk 0 has no bit")
        let head = try image.sectorBitmapBytes(block: firstOf1, sectors: 0...7)
        #expect(head[0] & 1 == 1, "the first sector of chunk 1 has no bit")

        // Windows around every write, through the engine and libvhdi, against the model.
        let windows: [(UInt64, Int)] = (ops + baseOps).map { op in
            let (o, l): (UInt64, UInt64)
            switch op { case let .pattern(_, a, b), let .zero(a, b), let .trim(a, b), let .input(_, a, b, _): (o, l) = (a, b) }
            let start = o > MiB ? (o - MiB) / MiB * MiB : 0
            return (start, Int(min(size, (o + l + 2 * MiB) / MiB * MiB) - start))
        }
        var bad: [UInt64] = []
        for (o, n) in windows where try image.read(at: o, count: n) != model.read(at: o, count: n) { bad.append(o) }
        #expect(bad.isEmpty, "engine reads differ from the model at \(bad)")
        let r = try Shell.run("""
            /usr/bin/python3 -c 'import pyvhdi,sys
            c=pyvhdi.file(); c.open(sys.argv[1]); p=pyvhdi.file(); p.open(sys.argv[2]); c.set_parent(p)
            m=open(sys.argv[3],"rb")
            for w in sys.argv[4:]:
                o,n=map(int,w.split(":")); c.seek_offset(o,0); m.seek(o)
                print("same" if c.read_buffer(n)==m.read(n) else "differs in %d+%d" % (o,n))' '\(child)' '\(base)' '\(model.path)' \(windows.map { "\($0.0):\($0.1)" }.joined(separator: " "))
            """)
        #expect(r.stdout.split(separator: "\n").allSatisfy { $0 == "same" } && r.stdout.split(separator: "\n").count == windows.count,
                "libvhdi: \(r.stdout)\(r.stderr)")
    }
}
