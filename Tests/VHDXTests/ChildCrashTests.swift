import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

/// Crash consistency of writes into a differencing image: crash at every flush point of each
/// operation; each crash image (nothing unflushed landed, everything landed, unflushed writes
/// torn per 512-byte sector, whole unflushed writes lost one at a time and at random) must open
/// with its parent attached in memory (log replay), check without corruption, read sector by
/// sector either as before the operation or as after it (through the parent wherever the child
/// holds nothing), keep every block outside the op NOT_PRESENT, and read the same after a
/// writable reopen replays the log into the file. The clean run must match a model of the op
/// (writes, zeros, whole-block trims), so "after" is what the op means, not just what it did.
///
/// Geometry: 512-byte sectors and 1 MiB blocks in both images, so a chunk (2^23 sectors) is
/// 4 GiB = 4096 blocks. The child is 4 GiB + 4 MiB, so it has two chunks and two sector bitmaps;
/// everything lives in memory and only allocated blocks take space, so that costs nothing.
/// The parent is 4 GiB + 1 MiB: the child's last three blocks lie past the parent's end and read
/// as zeros unless the child holds them.
///
/// Most ops run on the base image followed by 8 MiB of zeros (unreferenced slack, which is not a
/// leak), so that new blocks reuse that space (cleared first) instead of growing the file: in a
/// debug build, growing CrashStorage/MemoryStorage costs ~0.5 s per MiB (`append(contentsOf:
/// repeatElement)`), and every op runs once per flush point. The ops marked "file grows" run on
/// the image as created, so new blocks extend the file (a resize, which CrashStorage keeps or
/// drops as a whole at a crash).
@Suite("Child crash consistency")
struct ChildCrashTests {
    static let MiB: UInt64 = 1 << 20
    static let G: UInt64 = 4 << 30  // the chunk boundary: block 4096, sector 2^23
    static let parentSize: UInt64 = G + MiB
    static let childSize: UInt64 = G + 4 * MiB
    /// The ranges read and compared: every op stays inside them, and the child holds nothing
    /// outside them (asserted on every crash image through its BAT).
    static let windows: [Range<UInt64>] = [0..<8 * MiB, G - 2 * MiB..<G + 3 * MiB]

    /// Parent (dynamic): pseudo-random bytes (every sector distinct) in blocks 0-5, 7 and
    /// 4094-4096; block 6 is unallocated (reads as zeros).
    static let parent: [UInt8] = {
        let m = MemoryStorage()
        var o = CreateOptions(virtualSize: parentSize)
        o.blockSize = UInt32(MiB)
        o.logicalSectorSize = 512
        try! VHDXCreator.create(on: m, options: o)
        m.bytes += [UInt8](repeating: 0, count: Int(12 * MiB))  // room for the blocks (see above)
        let image = try! VHDXFile(storage: m)
        var rng = SplitMix(seed: 0x5EED)
        for block: UInt64 in [0, 1, 2, 3, 4, 5, 7, 4094, 4095, 4096] {
            var bytes = [UInt8](repeating: 0, count: Int(MiB))
            bytes.withUnsafeMutableBytes { b in
                for i in 0..<b.count / 8 { b.storeBytes(of: rng.next(), toByteOffset: i * 8, as: UInt64.self) }
            }
            try! image.write(bytes, at: block * MiB)
        }
        try! image.close()
        return m.bytes
    }()

    /// A fresh read-only parent for each use: a VHDXFile (its BAT cache) is not shared across
    /// the concurrently running test cases.
    static func openParent() throws -> VHDXFile {
        try VHDXFile(storage: MemoryStorage(parent, writable: false))
    }

    /// The child, made by VHDXCreator.createChild (on files, then loaded), then given through
    /// the engine:
    ///   block 1:    PARTIALLY_PRESENT, sectors 256..<384 hold 0x21 (chunk 0's bitmap exists)
    ///   block 3:    ZERO
    ///   block 5:    FULLY_PRESENT, 0x55
    ///   block 4095: PARTIALLY_PRESENT, sectors 0..<64 hold 0x2B
    ///   all others NOT_PRESENT; chunk 1 (blocks 4096-4099) has no sector bitmap.
    static let base: [UInt8] = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vhdx-childcrash-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let parentPath = dir.appendingPathComponent("parent.vhdx").path
        let childPath = dir.appendingPathComponent("child.avhdx").path
        _ = FileManager.default.createFile(atPath: parentPath, contents: Data(parent))
        var co = ChildOptions()
        co.virtualSize = childSize
        co.blockSize = UInt32(MiB)
        try! VHDXCreator.createChild(path: childPath, parentPath: parentPath, options: co)
        let created = [UInt8](FileManager.default.contents(atPath: childPath)!)
        let m = MemoryStorage(created + [UInt8](repeating: 0, count: Int(4 * MiB)))  // room for 3 blocks and a bitmap
        let child = try! VHDXFile(storage: m)
        child.parent = try! openParent()
        try! child.write([UInt8](repeating: 0x21, count: 128 * 512), at: MiB + 256 * 512)
        try! child.writeZeroes(at: 3 * MiB, length: MiB)
        try! child.write([UInt8](repeating: 0x55, count: Int(MiB)), at: 5 * MiB)
        try! child.write([UInt8](repeating: 0x2B, count: 64 * 512), at: G - MiB)
        try! child.close()
        let end = try! VHDXFile(storage: MemoryStorage(m.bytes, writable: false)).referencedEnd()
        precondition(end == UInt64(created.count) + 4 * MiB, "the base child has slack at its end")
        return m.bytes
    }()

    /// `base` followed by 8 MiB of zeros that new blocks reuse.
    static let paddedBase: [UInt8] = base + [UInt8](repeating: 0, count: Int(8 * MiB))

    /// One change to the virtual disk.
    enum Action: Sendable {
        case write(at: UInt64, count: UInt64, byte: UInt8)
        case zero(at: UInt64, length: UInt64)
        case trim(at: UInt64, length: UInt64)
    }

    /// Actions run in one session, each committed on its own.
    struct Op: CustomStringConvertible, Sendable {
        let description: String
        let fileGrows: Bool
        let actions: [Action]
        init(_ description: String, fileGrows: Bool = false, _ actions: Action...) {
            self.description = description + (fileGrows ? " (file grows)" : "")
            self.fileGrows = fileGrows
            self.actions = actions
        }
        var base: [UInt8] { fileGrows ? ChildCrashTests.base : ChildCrashTests.paddedBase }

        func run(_ image: VHDXFile) throws {
            for a in actions {
                switch a {
                case let .write(at, count, byte): try image.write([UInt8](repeating: byte, count: Int(count)), at: at)
                case let .zero(at, length): try image.writeZeroes(at: at, length: length)
                case let .trim(at, length): try image.trim(at: at, length: length)
                }
            }
        }

        /// The model: what `content` must hold after the op, given what it held before. A trim
        /// makes whole blocks read as zeros (UNMAPPED, never the parent) and leaves partial ones.
        func expected(from before: [UInt8]) -> [UInt8] {
            var out = before
            func set(_ range: Range<UInt64>, _ byte: UInt8) {
                let i = ChildCrashTests.contentIndex(range.lowerBound)!, n = range.count
                precondition(ChildCrashTests.contentIndex(range.upperBound - 1) == i + n - 1, "an op reaches outside the windows")
                out.withUnsafeMutableBytes { _ = memset($0.baseAddress! + i, Int32(byte), n) }
            }
            for a in actions {
                switch a {
                case let .write(at, count, byte): set(at..<at + count, byte)
                case let .zero(at, length): set(at..<at + length, 0)
                case let .trim(at, length):
                    let first = (at + MiB - 1) / MiB, end = (at + length) / MiB
                    if first < end { set(first * MiB..<end * MiB, 0) }
                }
            }
            return out
        }
    }

    static let ops: [Op] = [
        Op("partial write into a NOT_PRESENT block (chunk bitmap exists)", .write(at: 2 * MiB + 4096, count: 64 << 10, byte: 0xA1)),
        Op("partial write into a NOT_PRESENT block (chunk bitmap exists)", fileGrows: true, .write(at: 2 * MiB + 4096, count: 64 << 10, byte: 0xA1)),
        Op("partial write into a NOT_PRESENT block of a chunk with no sector bitmap yet", .write(at: G + 8192, count: 64 << 10, byte: 0xA2)),
        Op("partial write into a NOT_PRESENT block of a chunk with no sector bitmap yet", fileGrows: true, .write(at: G + 8192, count: 64 << 10, byte: 0xA2)),
        Op("second partial write into a PARTIALLY_PRESENT block", .write(at: MiB + 300 * 512, count: 300 * 512, byte: 0xB3)),
        Op("full-block write into a NOT_PRESENT block", .write(at: 2 * MiB, count: MiB, byte: 0xC4)),
        Op("full-block write over a PARTIALLY_PRESENT block", .write(at: MiB, count: MiB, byte: 0xC5)),
        Op("zeros over parent data, part of a NOT_PRESENT block", .zero(at: 4 * MiB + 1000 * 512, length: 8192)),
        Op("zeros over parent data, a whole NOT_PRESENT block", .zero(at: 0, length: MiB)),
        Op("zeros over a whole PARTIALLY_PRESENT block", .zero(at: MiB, length: MiB)),
        Op("zeros over part of a PARTIALLY_PRESENT block (present and parent sectors)", .zero(at: MiB + 200 * 512, length: 300 * 512)),
        Op("unaligned write into a NOT_PRESENT block (read-modify-write through the parent)", .write(at: 4 * MiB + 300, count: 1000, byte: 0xD6)),
        Op("unaligned write over present and parent sectors of a PARTIALLY_PRESENT block", .write(at: MiB + 383 * 512 + 100, count: 700, byte: 0xD7)),
        Op("unaligned write across two NOT_PRESENT blocks, one unallocated in the parent", .write(at: 7 * MiB - 100, count: 300, byte: 0xD8)),
        Op("partial write into a ZERO block", .write(at: 3 * MiB + 8192, count: 4096, byte: 0xE9)),
        Op("trim a whole FULLY_PRESENT block", .trim(at: 5 * MiB, length: MiB)),
        Op("trim a whole PARTIALLY_PRESENT block", .trim(at: MiB, length: MiB)),
        Op("trim a whole NOT_PRESENT block over parent data", .trim(at: 2 * MiB, length: MiB)),
        Op("trim part of a block (changes nothing)", .trim(at: MiB + 4096, length: 8192)),
        Op("write spanning two chunks' sector bitmaps (PARTIALLY_PRESENT + new bitmap)", .write(at: G - (256 << 10), count: 512 << 10, byte: 0xF1)),
        Op("write spanning two chunks' sector bitmaps (PARTIALLY_PRESENT + new bitmap)", fileGrows: true, .write(at: G - (256 << 10), count: 512 << 10, byte: 0xF1)),
        Op("write across two chunks: partial, two whole blocks, partial past the parent's end", .write(at: G - MiB - 4096, count: 2 * MiB + 8192, byte: 0xF2)),
        Op("unaligned zeros across the chunk boundary", .zero(at: G - 4000, length: 9000)),
        Op("partial write past the parent's end", .write(at: G + 2 * MiB + 512, count: 1024, byte: 0xF3)),
        Op("two partial writes, one commit each", .write(at: 512, count: 512, byte: 0xE1), .write(at: 7 * MiB + 512, count: 512, byte: 0xE2)),
    ]

    /// The virtual size (8 bytes) then the bytes of every window, read through the parent.
    static func content(_ bytes: [UInt8]) throws -> [UInt8] {
        let image = try VHDXFile(storage: MemoryStorage(bytes, writable: false))
        image.parent = try openParent()
        var out = ByteWriter()
        out.write(image.virtualSize)
        var result = out.bytes
        result.reserveCapacity(result.count + windows.reduce(0) { $0 + Int($1.upperBound - $1.lowerBound) })
        for w in windows {
            result += try image.read(at: w.lowerBound, count: Int(w.upperBound - w.lowerBound))
        }
        return result
    }

    /// Payload blocks outside the windows that the child's BAT does not show as NOT_PRESENT.
    static func strayBlocks(_ bytes: [UInt8]) throws -> [UInt64] {
        let image = try VHDXFile(storage: MemoryStorage(bytes, writable: false))
        let g = image.geometry
        var stray: [UInt64] = []
        try image.forEachBATEntry { index, entry in
            guard index % (g.chunkRatio + 1) != g.chunkRatio else { return }  // a sector bitmap entry
            let block = index - index / (g.chunkRatio + 1)
            guard !windows.contains(where: { $0.contains(block * MiB) }) else { return }
            if entry.state != PayloadBlockState.notPresent.rawValue { stray.append(block) }
        }
        return stray
    }

    /// Runs open → attach parent → op → flush → close on `storage`; returns false if it crashed.
    static func session(_ storage: Storage, _ op: Op) -> Bool {
        do {
            let image = try VHDXFile(storage: storage)
            image.parent = try openParent()
            try op.run(image)
            try image.flush()
            try image.close()
            return true
        } catch {
            return false
        }
    }

    /// The base image is what the ops assume.
    @Test func baseStates() throws {
        let image = try VHDXFile(storage: MemoryStorage(ChildCrashTests.base, writable: false))
        #expect(image.diskType == .differencing)
        #expect(image.virtualSize == ChildCrashTests.childSize)
        #expect(image.geometry.chunkRatio == 4096)
        func state(_ block: UInt64) throws -> PayloadBlockState? { PayloadBlockState(rawValue: try image.payloadEntry(block: block).state) }
        #expect(try state(0) == .notPresent)
        #expect(try state(1) == .partiallyPresent)
        #expect(try state(3) == .zero)
        #expect(try state(5) == .fullyPresent)
        #expect(try state(4095) == .partiallyPresent)
        #expect(try state(4096) == .notPresent)
        #expect(try image.sectorBitmapEntry(chunk: 0)?.state == SectorBitmapState.present.rawValue)
        #expect(try image.sectorBitmapEntry(chunk: 1)?.state != SectorBitmapState.present.rawValue)
        #expect(try Checker.check(storage: MemoryStorage(ChildCrashTests.base, writable: false)).exitCode == 0)
        #expect(try Checker.check(storage: MemoryStorage(ChildCrashTests.paddedBase, writable: false)).exitCode == 0)
        // Reads fall through to the parent where the child holds nothing.
        image.parent = try ChildCrashTests.openParent()
        let p = try ChildCrashTests.openParent()
        #expect(try image.read(at: 0, count: 4096) == p.read(at: 0, count: 4096))
        #expect(try image.read(at: ChildCrashTests.MiB, count: 512) == p.read(at: ChildCrashTests.MiB, count: 512))
        #expect(try image.read(at: ChildCrashTests.MiB + 256 * 512, count: 512) == [UInt8](repeating: 0x21, count: 512))
        #expect(try image.read(at: 6 * ChildCrashTests.MiB, count: 512) == [UInt8](repeating: 0, count: 512))
        #expect(try image.read(at: ChildCrashTests.G + ChildCrashTests.MiB, count: 512) == [UInt8](repeating: 0, count: 512))
        #expect(try image.read(at: ChildCrashTests.G, count: 512) != [UInt8](repeating: 0, count: 512))
    }

    @Test("crash at every flush point", arguments: ops)
    func crashEverywhere(_ op: Op) throws {
        let base = op.base
        let before = try ChildCrashTests.content(base)
        let clean = CrashStorage(base)
        #expect(ChildCrashTests.session(clean, op), "the op fails without a crash")
        let after = try ChildCrashTests.content(clean.volatile)
        // The clean result is what the op means: every other sector reads as before.
        let model = op.expected(from: before)
        var wrong: [Int] = []
        for s in stride(from: 8, to: after.count, by: 512) where !sameSector(after, model, s) { wrong.append(s) }
        #expect(wrong.isEmpty, "\(op): after a clean run, sectors differ from the model at virtual \(wrong.prefix(4).map(ChildCrashTests.virtualOffset))")
        #expect(!sameBytes(after, before) || op.description.contains("nothing"), "the op changed nothing")
        #expect(try Checker.check(storage: MemoryStorage(clean.durable, writable: false)).exitCode == 0)
        #expect(try ChildCrashTests.strayBlocks(clean.volatile).isEmpty)
        let flushPoints = clean.flushes
        #expect(flushPoints >= 4)
        let sweep = CrashSweep("\(op)")
        for k in 0..<flushPoints {
            let storage = CrashStorage(base)
            storage.crashAtFlush = k
            let recorder = WriteRecorder(storage)
            #expect(!ChildCrashTests.session(recorder, op), "no crash at flush \(k)")
            sweep.visited("flush \(k)", crashed: storage.crashed)
            // The crash images: nothing unflushed landed, everything landed, random subsets of
            // the unflushed writes torn per 512-byte sector (CrashStorage), and whole-write
            // subsets (below). Identical images are checked once.
            var variants: [(String, [UInt8])] = []
            func add(_ name: String, _ image: [UInt8]) {
                if !variants.contains(where: { sameBytes($0.1, image) }) { variants.append((name, image)) }
            }
            let durable = storage.durable
            add("durable only", durable)
            add("all unflushed writes landed", storage.volatile)
            for seed in TestScale.seeds(2) { add("torn, \(TestScale.replay(seed: seed, filter: "ChildCrashTests"))", storage.crashImage(seed: seed &* 7919 &+ UInt64(k))) }
            // Whole writes lost, none torn: each unflushed write alone missing (a log entry
            // that landed without the data written before it, say), and random subsets. Random
            // tearing per 512-byte sector almost never lands a whole multi-sector log entry, so
            // these are the variants that test what a complete entry may rely on.
            let n = recorder.writeCount
            for i in 0..<min(n, 12) { add("unflushed write \(i + 1)/\(n) lost", recorder.image(durable) { $0 != i }) }
            for seed in TestScale.seeds(2) {
                var rng = SplitMix(seed: 0xC0FFEE &+ seed &* 31 &+ UInt64(k))
                let keep = (0..<n).map { _ in rng.next() % 2 == 0 }
                add("whole unflushed writes, \(TestScale.replay(seed: seed, filter: "ChildCrashTests"))", recorder.image(durable) { keep[$0] })
            }
            for (variant, image) in variants {
                let context = "\(op) crash at flush \(k)/\(flushPoints) \(variant)"
                let report = try Checker.check(storage: MemoryStorage(image, writable: false))
                #expect(report.corruptions == 0, "\(context): \(report.findings)")
                let got: [UInt8]
                do { got = try ChildCrashTests.content(image) } catch {
                    Issue.record("\(context): does not open or read: \(error)")
                    continue
                }
                sweep.checkedResult()
                var mixed: [Int] = []
                if !sameBytes(got, before) && !sameBytes(got, after) {
                    #expect(got.prefix(8) == before.prefix(8), "\(context): virtual size changed")
                    for s in stride(from: 8, to: got.count, by: 512) where !sameSector(got, before, s) && !sameSector(got, after, s) {
                        mixed.append(s)
                    }
                }
                #expect(mixed.isEmpty, "\(context): sectors neither old nor new at virtual \(mixed.prefix(4).map(ChildCrashTests.virtualOffset))")
                #expect(try ChildCrashTests.strayBlocks(image).isEmpty, "\(context): blocks outside the op's range changed state")
                // A writable reopen replays into the file; the result reads the same and checks clean.
                let m = MemoryStorage(image)
                let reopened = try VHDXFile(storage: m)
                try reopened.close()
                #expect(try sameBytes(ChildCrashTests.content(m.bytes), got), "\(context): replay changed content")
                #expect(try Checker.check(storage: MemoryStorage(m.bytes, writable: false)).corruptions == 0, "\(context) after replay")
            }
        }
        // Once flush() returned, the new content is durable whatever else is lost.
        #expect(try sameBytes(ChildCrashTests.content(clean.durable), after))
        #expect(try sameBytes(ChildCrashTests.content(clean.crashImage(seed: 1)), after))
    }

    /// The index in `content` of virtual offset `v`, if a window holds it.
    static func contentIndex(_ v: UInt64) -> Int? {
        var i = 8
        for w in windows {
            if w.contains(v) { return i + Int(v - w.lowerBound) }
            i += Int(w.upperBound - w.lowerBound)
        }
        return nil
    }

    /// The virtual offset of byte `at` of `content`.
    static func virtualOffset(_ at: Int) -> UInt64 {
        var i = UInt64(at - 8)
        for w in windows {
            let n = w.upperBound - w.lowerBound
            if i < n { return w.lowerBound + i }
            i -= n
        }
        return UInt64.max
    }
}

