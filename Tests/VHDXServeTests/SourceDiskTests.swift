import Foundation
import Synchronization
import Testing
import VHDX
import VHDXChangeTracking
import VHDXFormat
import VHDXSets
import VHDXTestSupport
@testable import VHDXServe

/// Images in a fresh folder, and the calls the server makes on a disk, for the *DiskTests.
final class DiskLab {
    let dir: String
    let log = LogLines()

    init(name: String = #function) throws {
        dir = Fixtures.tempPath("serve-" + name.filter { $0.isLetter })
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: dir) }

    func path(_ name: String) -> String { dir + "/" + name }

    /// A new image (dynamic unless `fixed`), tracked when asked (64 KiB granule).
    @discardableResult
    func create(_ name: String, size: UInt64 = 16 << 20, blockSize: UInt32 = 1 << 20, fixed: Bool = false, tracked: Bool = false) throws -> String {
        var o = CreateOptions(virtualSize: size)
        o.blockSize = blockSize
        o.fixed = fixed
        try VHDXCreator.create(path: path(name), options: o)
        if tracked {
            let image = try VHDXFile.openFile(path: path(name), writable: true)
            try ChangeTracking.enable(image, granule: 64 << 10)
            try image.close()
        }
        return path(name)
    }

    /// A differencing child of `parent`.
    @discardableResult
    func child(_ name: String, of parent: String) throws -> String {
        try VHDXCreator.createChild(path: path(name), parentPath: parent)
        return path(name)
    }

    func open(_ path: String, readOnly: Bool = false, overlay: String? = nil, checkpoint: Bool = false) throws -> any ServedDisk {
        var o = ServeSourceOptions()
        o.readOnly = readOnly
        o.overlay = overlay
        o.checkpoint = checkpoint
        let log = self.log
        return try ServedSource.open(path, options: o, log: { log.append($0) })
    }

    /// Writes through the engine as any tracked writer does (set: through its leaf).
    func engineWrite(_ path: String, _ bytes: [UInt8], at offset: UInt64, tracked: Bool = true) throws {
        let image = try VHDSet.looksLikeSet(path) ? try VHDSet.open(path: path, writable: true).openLeaf(writable: true)
                                              : try VHDXFile.openChain(path: path, writable: true)
        if tracked { try ChangeTracker.attach(to: image) }
        try image.write(bytes, at: offset)
        try image.close()
    }

    /// Seals the disk's (or set's) current change ID.
    func seal(_ path: String) throws -> ChangeID {
        if try VHDSet.looksLikeSet(path) { return try VHDSet.open(path: path, writable: true).seal() }
        let image = try VHDXFile.openChain(path: path, writable: true)
        let id = try ChangeTracking.tracker(of: image).seal()
        try image.close()
        return id
    }

    /// The whole virtual disk as the engine reads it.
    func content(_ path: String) throws -> [UInt8] {
        let image = try VHDSet.looksLikeSet(path) ? try VHDSet.open(path: path).openLeaf() : try VHDXFile.openChain(path: path)
        return try image.read(at: 0, count: Int(image.virtualSize))
    }

    static func sha(_ path: String) throws -> String {
        try Shell.run("sha256sum '\(path)' | cut -d' ' -f1").stdout
    }
}

final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ s: String) { lines.withLock { $0.append(s) } }
    var all: [String] { lines.withLock { $0 } }
}

func read(_ disk: any ServedDisk, _ offset: UInt64, _ count: Int) throws -> [UInt8] {
    var out = [UInt8](repeating: 0xEE, count: count)
    try out.withUnsafeMutableBytes { b in try disk.read(into: b, at: offset) }
    return out
}

func write(_ disk: any ServedDisk, _ bytes: [UInt8], _ offset: UInt64, fua: Bool = false) throws {
    try bytes.withUnsafeBytes { b in try disk.write(b, at: offset, fua: fua) }
}

/// `count` seeded random bytes (8 at a time: per-byte generation is slow in debug builds).
func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
    var g = SplitMix(seed: seed)
    var words = [UInt64](repeating: 0, count: (count + 7) / 8)
    for i in words.indices { words[i] = g.next() | 0x0101_0101_0101_0101 }  // no zero bytes
    return words.withUnsafeBytes { Array($0.prefix(count)) }
}

func code(_ body: () throws -> Void) -> ServeError.Code? {
    do { try body() } catch let e as ServeError { return e.code } catch { return nil }
    return nil
}

@Suite struct SourceDiskTests {
    @Test func dynamicDiskReadsWritesFlushesAndClosesClean() throws {
        let lab = try DiskLab()
        let p = try lab.create("d.vhdx", tracked: true)
        let id = try lab.seal(p)
        let guidBefore = try VHDXFile.open(path: p).header.dataWriteGUID
        let disk = try lab.open(p)
        #expect(disk.info.size == 16 << 20)
        #expect(!disk.info.readOnly && disk.info.canTrim && disk.info.canWriteZeroes && disk.info.canFastZero && disk.info.canMultiConn)
        #expect(disk.info.minimumBlockSize == 512 && disk.info.preferredBlockSize == 4096)
        let a = pattern(8192, seed: 1)
        try write(disk, a, 3 << 20)
        try write(disk, a, 5 << 20, fua: true)
        try disk.flush()
        #expect(try read(disk, 3 << 20, 8192) == a)
        #expect(try read(disk, 0, 512) == [UInt8](repeating: 0, count: 512))
        try disk.close()
        try disk.close()  // idempotent
        #expect(code { _ = try read(disk, 0, 512) } == .shutdown)
        let image = try VHDXFile.open(path: p)
        #expect(image.header.logGUID == .zero)  // closed clean: empty log
        #expect(try image.read(at: 5 << 20, count: 8192) == a)
        #expect(try Checker.check(path: p).exitCode == 0)
        // A writer like any other: DataWriteGuid renewed, through tracking (no reset: the ID
        // sealed before answers the writes).
        #expect(image.header.dataWriteGUID != guidBefore)
        let changed = try ChangeTracking.changes(in: image, since: id).ranges
        #expect(changed.contains { $0.offset <= 5 << 20 && (5 << 20) + 8192 <= $0.end })
    }

    @Test func fixedDiskAndBoundsAndZeroes() throws {
        let lab = try DiskLab()
        let p = try lab.create("f.vhdx", size: 8 << 20, fixed: true)
        let disk = try lab.open(p)
        #expect(!disk.info.canFastZero)  // a fixed disk zeroes by writing zeros
        try write(disk, pattern(1 << 20, seed: 2), 1 << 20)
        #expect(code { try disk.writeZeroes(at: 1 << 20, length: 1 << 20, mayDeallocate: true, fastOnly: true, fua: false) } == .notSupported)
        #expect(try read(disk, 1 << 20, 16) == Array(pattern(16, seed: 2)))  // unchanged by the refused request
        try disk.writeZeroes(at: 1 << 20, length: 1 << 20, mayDeallocate: true, fastOnly: false, fua: true)
        #expect(try read(disk, 1 << 20, 1 << 20) == [UInt8](repeating: 0, count: 1 << 20))
        try disk.trim(at: 0, length: 1 << 20, fua: false)  // advisory: accepted
        #expect(code { try write(disk, [1], (8 << 20) - 0) } == .noSpace)
        #expect(code { _ = try read(disk, (8 << 20) - 256, 512) } == .invalid)
        try disk.close()
        #expect(try Checker.check(path: p).exitCode == 0)
    }

    @Test func fastZeroOnlyForWholeBlocksOfADynamicDisk() throws {
        let lab = try DiskLab()
        let p = try lab.create("d.vhdx")
        let disk = try lab.open(p)
        try write(disk, pattern(3 << 20, seed: 3), 1 << 20)
        #expect(code { try disk.writeZeroes(at: (1 << 20) + 512, length: 1 << 20, mayDeallocate: true, fastOnly: true, fua: false) } == .notSupported)
        #expect(code { try disk.writeZeroes(at: 1 << 20, length: 1 << 20, mayDeallocate: false, fastOnly: true, fua: false) } == .notSupported)
        try disk.writeZeroes(at: 1 << 20, length: 2 << 20, mayDeallocate: true, fastOnly: true, fua: false)
        #expect(try read(disk, 1 << 20, 2 << 20) == [UInt8](repeating: 0, count: 2 << 20))
        // NO_HOLE: zeros written as data, the range stays allocated.
        try disk.writeZeroes(at: 3 << 20, length: 4096, mayDeallocate: false, fastOnly: false, fua: false)
        #expect(try read(disk, 3 << 20, 4096) == [UInt8](repeating: 0, count: 4096))
        let map = try disk.blockStatus(context: "base:allocation", at: 1 << 20, length: 3 << 20, maxExtents: 10)
        #expect(map == [BlockStatusExtent(length: 2 << 20, flags: 3), BlockStatusExtent(length: 1 << 20, flags: 0)])
        try disk.trim(at: 3 << 20, length: 1 << 20, fua: true)
        #expect(try read(disk, 3 << 20, 4096) == [UInt8](repeating: 0, count: 4096))
        try disk.close()
        #expect(try Checker.check(path: p).exitCode == 0)
    }

    /// Connections call from many threads at once: every call is serialised through one handle.
    @Test func concurrentCallsAreSerialised() throws {
        let lab = try DiskLab()
        let p = try lab.create("d.vhdx")
        let disk = try lab.open(p)
        let failures = LogLines()
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            do {
                for k in 0..<8 {
                    let off = UInt64(t * 8 + k) * (64 << 10)
                    try write(disk, pattern(64 << 10, seed: UInt64(t * 8 + k)), off, fua: k == 7)
                    _ = try disk.blockStatus(context: "base:allocation", at: 0, length: 16 << 20, maxExtents: 16)
                    if try read(disk, off, 64 << 10) != pattern(64 << 10, seed: UInt64(t * 8 + k)) { failures.append("\(off)") }
                }
                try disk.flush()
            } catch { failures.append("\(error)") }
        }
        #expect(failures.all.isEmpty)
        try disk.close()
        let content = try lab.content(p)
        for i in 0..<64 {
            #expect(sameBytes(Array(content[i * (64 << 10)..<(i + 1) * (64 << 10)]), pattern(64 << 10, seed: UInt64(i))))
        }
        #expect(try Checker.check(path: p).exitCode == 0)
    }

    @Test func engineErrorsMapToTheProtocolsCodes() {
        let full = VHDXError(.io, "write failed", path: "d.vhdx", cause: Errno(ENOSPC))
        #expect(ServeError.engine(full, "write").code == .noSpace)
        // After a failed change the session refuses more, its cause the first failure.
        #expect(ServeError.engine(VHDXError(.io, "session ended", cause: full), "write").code == .noSpace)
        #expect(ServeError.engine(VHDXError(.io, "read failed", cause: Errno(EIO)), "read").code == .io)
        #expect(ServeError.engine(VHDXError(.readOnly, "read-only"), "write").code == .notPermitted)
        #expect(ServeError.engine(VHDXError(.outOfBounds, "past the end"), "read").code == .invalid)
        #expect(ServeError.engine(VHDXError(.corrupt, "bad BAT"), "read").message.contains("bad BAT"))
    }

    @Test func readOnlyWritesNothing() throws {
        let lab = try DiskLab()
        let p = try lab.create("d.vhdx", tracked: true)
        try lab.engineWrite(p, pattern(4096, seed: 4), at: 0)
        let before = try DiskLab.sha(p)
        let disk = try lab.open(p, readOnly: true)
        #expect(disk.info.readOnly && !disk.info.canTrim && !disk.info.canWriteZeroes)
        #expect(code { try write(disk, [1, 2], 0) } == .notPermitted)
        #expect(code { try disk.trim(at: 0, length: 4096, fua: false) } == .notPermitted)
        #expect(code { try disk.writeZeroes(at: 0, length: 4096, mayDeallocate: true, fastOnly: false, fua: false) } == .notPermitted)
        try disk.flush()
        #expect(try read(disk, 0, 4096) == pattern(4096, seed: 4))
        try disk.close()
        #expect(try DiskLab.sha(p) == before)
    }

    @Test func exportedChainIsServedThroughEveryLayer() throws {
        let lab = try DiskLab()
        let full = try lab.create("full.vhdx")
        try lab.engineWrite(full, pattern(1 << 20, seed: 5), at: 0)
        let inc1 = try lab.child("inc1.avhdx", of: full)
        try lab.engineWrite(inc1, pattern(4096, seed: 6), at: 4096)
        let inc2 = try lab.child("inc2.avhdx", of: inc1)
        try lab.engineWrite(inc2, pattern(512, seed: 7), at: 8 << 20)
        let expected = try lab.content(inc2)
        let disk = try lab.open(inc2, readOnly: true)
        #expect(disk.info.description.contains("chain of 3 files"))
        #expect(try read(disk, 0, 16 << 20) == expected)
        try disk.close()
    }

    @Test func setIsServedThroughItsLeafAndHeldWhileServed() throws {
        let lab = try DiskLab()
        let set = lab.path("s.vhds")
        var o = CreateOptions(virtualSize: 8 << 20)
        o.blockSize = 1 << 20
        try VHDSet.create(path: set, options: o)
        let disk = try lab.open(set)
        try write(disk, pattern(4096, seed: 8), 4096)
        // Serving holds the set's writer lock: another writer is refused.
        #expect(throws: VHDXError.self) { _ = try VHDSet.open(path: set, writable: true) }
        try disk.close()
        #expect(try lab.content(set)[4096..<8192] == pattern(4096, seed: 8)[...])
    }
}
