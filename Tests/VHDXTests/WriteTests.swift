import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

/// The write path against a plain byte-array model: random writes, zeroes, trims, resizes and
/// compaction, reopened and compared after every session, checked clean throughout.
@Suite("Write path")
struct WriteTests {
    static func newImage(size: UInt64, block: UInt32 = 1 << 20, lss: UInt32 = 512, fixed: Bool = false) throws -> MemoryStorage {
        let m = MemoryStorage()
        var o = CreateOptions(virtualSize: size)
        o.blockSize = block
        o.logicalSectorSize = lss
        o.fixed = fixed
        try VHDXCreator.create(on: m, options: o)
        return m
    }

    static let configurations: [(UInt32, UInt32, Bool)] = [(1 << 20, 512, false), (2 << 20, 4096, false), (1 << 20, 512, true), (4 << 20, 4096, true)]

    @Test("random operations match a byte model", arguments: configurations)
    func randomOperations(_ c: (UInt32, UInt32, Bool)) throws {
        let size: UInt64 = 24 << 20
        let m = try WriteTests.newImage(size: size, block: c.0, lss: c.1, fixed: c.2)
        var model = [UInt8](repeating: 0, count: Int(size))
        var rng = SplitMix(seed: UInt64(c.0) ^ UInt64(c.1) ^ (c.2 ? 1 : 0))
        for session in 0..<4 {
            let image = try VHDXFile(storage: m)
            for _ in 0..<25 {
                let offset = rng.next() % size
                let length = min(size - offset, 1 + rng.next() % (3 << 20))
                switch rng.next() % 6 {
                case 0:
                    try image.writeZeroes(at: offset, length: length)
                    model.zero(Int(offset)..<Int(offset + length))
                case 1:
                    // The documented rule (VHDXFile.trim), not a read-back: on a dynamic disk each
                    // block the range covers whole (the last block ends at the disk's end) becomes
                    // UNMAPPED and reads as zeros; partly covered blocks keep their bytes; a fixed
                    // disk ignores trims.
                    try image.trim(at: offset, length: length)
                    let block = UInt64(c.0)
                    var start = (offset + block - 1) / block * block
                    while !c.2 && start < offset + length {
                        let blockEnd = min(start + block, size)
                        if blockEnd <= offset + length {
                            model.zero(Int(start)..<Int(blockEnd))
                        }
                        start += block
                    }
                default:
                    let fill = UInt8(truncatingIfNeeded: rng.next() | 1)
                    var data = [UInt8](repeating: fill, count: Int(length))
                    if rng.next() % 3 == 0 { data.zero(0..<Int(length / 2)) }
                    try image.write(data, at: offset)
                    model.overwrite(Int(offset)..<Int(offset + length), with: data)
                }
            }
            if session == 2 && !c.2 { _ = try image.compact() }
            try image.close()
            #expect(image.header.logGUID.isZero, "a clean close leaves an empty log")
            let reopened = try VHDXFile(storage: MemoryStorage(m.bytes, writable: false))
            #expect(try reopened.read(at: 0, count: Int(size)) == model, "session \(session)")
            let report = try Checker.check(storage: MemoryStorage(m.bytes, writable: false))
            #expect(report.exitCode == 0, "session \(session): \(report.findings)")
        }
    }

    @Test func guidsChangeAsTheSpecRequires() throws {
        let m = try WriteTests.newImage(size: 8 << 20)
        let first = try VHDXFile(storage: MemoryStorage(m.bytes, writable: false)).header
        // A writable open writes nothing; the first change renews FileWriteGuid, and (being
        // user-visible) DataWriteGuid, once per session.
        let image = try VHDXFile(storage: m)
        #expect(image.header == first)
        try image.write([1, 2, 3], at: 4096)
        #expect(image.header.fileWriteGUID != first.fileWriteGUID)
        let afterFirst = image.header.dataWriteGUID
        #expect(afterFirst != first.dataWriteGUID)
        try image.write([4, 5, 6], at: 3 << 20)
        #expect(image.header.dataWriteGUID == afterFirst)
        try image.close()
        // Compact changes no content: a session with only that keeps DataWriteGuid.
        let again = try VHDXFile(storage: m)
        _ = try again.compact()
        try again.close()
        #expect(again.header.dataWriteGUID == afterFirst)
        // Nothing opened read-only is written.
        let before = m.bytes
        let ro = try VHDXFile(storage: MemoryStorage(m.bytes, writable: false))
        #expect(throws: VHDXError(.readOnly, "")) { try ro.write([1], at: 0) }
        #expect(m.bytes == before)
    }

    /// Records what the engine tells it; throws where told to.
    final class RecordingObserver: ChangeObserver {
        var seen: [(ChangeKind, Range<UInt64>)] = []
        var sessions = 0
        var failChanges = false
        var failSession = false
        func sessionWillBegin(_ image: VHDXFile, proposed: GUID?) throws(VHDXError) -> GUID {
            if failSession { throw VHDXError(.io, "tracking unavailable") }
            sessions += 1
            return proposed ?? .random()
        }
        func willChange(_ image: VHDXFile, _ kind: ChangeKind, _ range: Range<UInt64>, newSize: UInt64?) throws(VHDXError) {
            if failChanges { throw VHDXError(.io, "tracking unavailable") }
            seen.append((kind, range))
        }
    }

    @Test func observerSeesEveryChangeBeforeItHappens() throws {
        let m = try WriteTests.newImage(size: 8 << 20)
        let image = try VHDXFile(storage: m)
        let observer = RecordingObserver()
        image.observer = observer
        try image.write([UInt8](repeating: 7, count: 100), at: 1000)
        try image.writeZeroes(at: 0, length: 1 << 20)
        try image.trim(at: 1 << 20, length: 1 << 20)
        try image.resize(to: 16 << 20)
        #expect(observer.seen.map(\.0) == [.write, .zero, .trim, .resize])
        #expect(observer.seen[0].1 == 1000..<1100)
        #expect(observer.seen[3].1 == (8 << 20)..<(16 << 20))
        #expect(observer.sessions == 1)
        // A throwing observer cancels the change.
        observer.failChanges = true
        #expect(throws: VHDXError.self) { try image.write([9], at: 0) }
        #expect(try image.read(at: 0, count: 1) == [0])
        try image.close()
    }

    @Test("an observer that refuses the session leaves the disk and its DataWriteGuid unchanged")
    func throwingObserverWritesNothing() throws {
        let m = try WriteTests.newImage(size: 8 << 20)
        let before = m.bytes
        let image = try VHDXFile(storage: m)
        let observer = RecordingObserver()
        observer.failSession = true
        image.observer = observer
        #expect(throws: VHDXError.self) { try image.write([1, 2, 3], at: 0) }
        #expect(throws: VHDXError.self) { try image.resize(to: 16 << 20) }
        #expect(m.bytes == before)
    }

    @Test func resizeRules() throws {
        let m = try WriteTests.newImage(size: 8 << 20)
        let image = try VHDXFile(storage: m)
        try image.write([UInt8](repeating: 0x42, count: 512), at: (5 << 20) + 512)
        #expect(try image.minimumSize() == (5 << 20) + 1024)
        #expect(throws: VHDXError(.invalidArgument, "")) { try image.resize(to: 5 << 20) }
        #expect(throws: VHDXError(.invalidArgument, "")) { try image.resize(to: (6 << 20) + 1) }
        try image.resize(to: (5 << 20) + 1024)
        #expect(image.virtualSize == (5 << 20) + 1024)
        // Growing far past the BAT's 1 MiB region moves it.
        let oldBAT = image.layout.batRegion
        try image.resize(to: 300 << 30)
        #expect(image.layout.batRegion.fileOffset != oldBAT.fileOffset)
        try image.write([0x43], at: (300 << 30) - 1)
        try image.close()
        let ro = try VHDXFile(storage: MemoryStorage(m.bytes, writable: false))
        #expect(ro.virtualSize == 300 << 30)
        #expect(try ro.read(at: (5 << 20) + 512, count: 512).allSatisfy { $0 == 0x42 })
        #expect(try ro.read(at: (5 << 20) + 1024, count: 4096).allSatisfy { $0 == 0 })
        #expect(try ro.read(at: (300 << 30) - 1, count: 1) == [0x43])
        #expect(try Checker.check(storage: MemoryStorage(m.bytes, writable: false)).exitCode == 0)
    }

    @Test("stale bytes past the referenced end never show through new blocks", arguments: [true, false])
    func newSpaceReadsZerosOverStaleTail(_ fixed: Bool) throws {
        let m = try WriteTests.newImage(size: 4 << 20, fixed: fixed)
        // What a crash can leave: an allocation written but never referenced.
        try m.write([UInt8](repeating: 0xEE, count: 3 << 20), at: try m.size())
        let image = try VHDXFile(storage: m)
        try image.resize(to: 6 << 20)  // fixed: two new allocated blocks
        try image.write([1], at: (6 << 20) - 1)  // dynamic: a new block for a 1-byte write
        try image.close()
        let ro = try VHDXFile(storage: MemoryStorage(m.bytes, writable: false))
        let tail = try ro.read(at: 4 << 20, count: 2 << 20)
        #expect(tail.dropLast().allSatisfy { $0 == 0 })
        #expect(tail.last == 1)
    }

    @Test("growing over stale BAT entries: the new blocks' entries win over the clearing of the grown part")
    func growOverStaleBATEntries() throws {
        let m = try WriteTests.newImage(size: 4 << 20, fixed: true)
        let probe = try VHDXFile(storage: MemoryStorage(m.bytes, writable: false))
        let used = probe.layout.batEntriesUsed
        // Another tool's leftovers in the BAT region past the entries in use (a shrink that left
        // them, a foreign writer): non-zero entries the grown table must not read as its own.
        let stale = BATEntry(state: .fullyPresent, offset: MiBOffset(bytes: 1 << 30)!)
        var bytes = [UInt8](repeating: 0, count: 8 * 4)
        for k in 0..<4 { stale.encode(into: &bytes, index: k) }
        try m.write(bytes, at: probe.layout.batRegion.fileOffset + used * 8)
        let image = try VHDXFile(storage: m)
        try image.resize(to: 8 << 20)  // fixed: four new allocated blocks (1 MiB) over stale entries
        try image.write([7], at: (8 << 20) - 1)
        try image.close()
        let ro = try VHDXFile(storage: MemoryStorage(m.bytes, writable: false))
        for block in UInt64(4)..<8 {
            let e = try ro.payloadEntry(block: block)
            #expect(e.state == PayloadBlockState.fullyPresent.rawValue, "block \(block) of the grown fixed disk is \(e.state), not fully present")
        }
        #expect(try ro.read(at: 4 << 20, count: 4 << 20).dropLast().allSatisfy { $0 == 0 })
        #expect(try Checker.check(storage: MemoryStorage(m.bytes, writable: false)).exitCode == 0)
    }

    @Test func secondWriterIsRefused() throws {
        let path = Fixtures.tempPath("locked.vhdx")
        try VHDXCreator.create(path: path, options: CreateOptions(virtualSize: 8 << 20))
        let writer = try VHDXFile.openFile(path: path, writable: true)
        #expect(throws: VHDXError(.inUse, "")) { try VHDXFile.openFile(path: path, writable: true) }
        #expect(throws: VHDXError(.inUse, "")) { try VHDXFile.openFile(path: path) }
        try writer.close()
        _ = writer
        unlink(path)
    }

    @Test func createRefusesToOverwrite() throws {
        let path = Fixtures.tempPath("exists.vhdx")
        try VHDXCreator.create(path: path, options: CreateOptions(virtualSize: 8 << 20))
        #expect(throws: VHDXError(.invalidArgument, "")) { try VHDXCreator.create(path: path, options: CreateOptions(virtualSize: 8 << 20)) }
        var bad = CreateOptions(virtualSize: 1000)
        #expect(throws: VHDXError(.invalidArgument, "")) { try VHDXCreator.create(path: path + "2", options: bad) }
        bad = CreateOptions(virtualSize: 1 << 20)
        bad.blockSize = 3 << 20
        #expect(throws: VHDXError(.invalidArgument, "")) { try VHDXCreator.create(path: path + "2", options: bad) }
        #expect(access(path + "2", F_OK) != 0)
        unlink(path)
    }
}
