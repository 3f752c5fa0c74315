import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

private let MiB: UInt64 = 1 << 20

/// `vhdx merge` / `Merger`: the ancestor alone must read what the chain read from the child
/// (compared with the chain's bytes read before the merge, and with `vhdx compare`), merged
/// ancestors pass `qemu-img check`, siblings are cut off, and a merge interrupted or crashed
/// anywhere leaves the chain reading its original content and completes when run again.
@Suite("Merge")
struct MergeTests {

    // MARK: - Building chains on files

    /// A folder of its own for one test.
    static func folder(_ name: String = #function) throws -> String {
        let dir = Fixtures.tempPath(name.filter { $0.isLetter || $0.isNumber })
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func create(_ path: String, size: UInt64, fixed: Bool = false) throws {
        var o = CreateOptions(virtualSize: size)
        o.blockSize = 1 << 20
        o.fixed = fixed
        try VHDXCreator.create(path: path, options: o)
    }

    static func child(_ path: String, over parent: String, size: UInt64? = nil) throws {
        var o = ChildOptions()
        o.blockSize = 1 << 20
        o.virtualSize = size
        try VHDXCreator.createChild(path: path, parentPath: parent, options: o)
    }

    static func edit(_ path: String, _ body: (VHDXFile) throws -> Void) throws {
        let image = try VHDXFile.openChain(path: path, writable: true)
        try body(image)
        try image.close()
    }

    /// Every byte the image (through its chain) reads.
    static func content(_ path: String, parents: ParentOptions = .default) throws -> [UInt8] {
        let image = try VHDXFile.openChain(path: path, parents: parents)
        return try image.read(at: 0, count: Int(image.virtualSize))
    }

    static func content(_ image: VHDXFile) throws -> [UInt8] {
        try image.read(at: 0, count: Int(image.virtualSize))
    }

    /// The seed in every byte, and each 512-byte sector stamped with its virtual offset, so
    /// data copied to the wrong place or from the wrong layer shows. (A per-byte formula is
    /// seconds per MiB in a debug build.)
    static func pattern(_ seed: UInt8, _ count: Int, at offset: UInt64 = 0) -> [UInt8] {
        var bytes = [UInt8](repeating: seed | 1, count: count)
        var i = Int((512 - offset % 512) % 512)
        while i + 8 <= count {
            let v = (offset + UInt64(i)) ^ (UInt64(seed) << 56)
            for k in 0..<8 { bytes[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
            i += 512
        }
        return bytes
    }

    static func put(_ image: VHDXFile, _ seed: UInt8, at offset: UInt64, _ count: Int) throws {
        try image.write(pattern(seed, count, at: offset), at: offset)
    }

    /// First offset where a and b differ (or where one ends), nil if equal. Used instead of
    /// comparing arrays in #expect, which would print megabytes on failure; memcmp because
    /// element-wise comparison takes a second per few MiB in a debug build.
    static func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> Int? {
        let n = min(a.count, b.count)
        let same = n == 0 || a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, n) == 0 } }
        if same { return a.count == b.count ? nil : n }
        var lo = 0, hi = n  // the first difference is in [lo, hi)
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            let prefixSame = a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress! + lo, y.baseAddress! + lo, mid - lo) == 0 } }
            if prefixSame { lo = mid } else { hi = mid }
        }
        return lo
    }

    static func isZero(_ bytes: ArraySlice<UInt8>) -> Bool { !bytes.contains { $0 != 0 } }

    static func sha(_ paths: [String]) throws -> [String] { try paths.map { try Shell.sha256(file: $0) } }

    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    static func qemuCheck(_ path: String) throws {
        try Shell.require("qemu-img")
        let r = try Shell.run("qemu-img check -f vhdx '\(path)'", allowFailure: true)
        #expect(r.status == 0, "qemu-img check \(path): \(r.stdout) \(r.stderr)")
    }

    /// A 32 MiB dynamic parent with data in blocks 0-7 and 20, and a child over it holding
    /// every kind of answer: whole and partial data, zeros written as data, zeros over the
    /// parent's data (a ZERO block, and a few sectors), UNMAPPED over the parent's data, and
    /// data where the parent has none.
    static func standardPair(_ dir: String, childSize: UInt64? = nil, fixedParent: Bool = false, parentSize: UInt64 = 32 << 20) throws -> (a: String, c: String) {
        let a = dir + "/a.vhdx", c = dir + "/c.avhdx"
        try create(a, size: parentSize, fixed: fixedParent)
        try edit(a) { image in
            try put(image, 1, at: 0, Int(8 * MiB))
            try put(image, 2, at: 20 * MiB, Int(MiB))
        }
        try child(c, over: a, size: childSize)
        try edit(c) { image in
            try put(image, 3, at: 1 * MiB, Int(MiB))                         // FULLY_PRESENT
            try put(image, 4, at: 2 * MiB + 4096, 5 * 512)                  // PARTIALLY_PRESENT
            try image.writeZeroes(at: 3 * MiB, length: MiB)                 // ZERO over data
            try image.writeZeroes(at: 4 * MiB + 8192, length: 16384)        // zero sectors over data
            try image.trim(at: 5 * MiB, length: MiB)                        // UNMAPPED over data
            try image.write([UInt8](repeating: 0, count: 4096), at: 6 * MiB + 512)  // zeros as data
            try put(image, 5, at: 12 * MiB + 1024, 70_000 / 512 * 512)      // where the parent has nothing
            try put(image, 6, at: 20 * MiB + 65536, 8192)                   // over parent data
        }
        return (a, c)
    }

    // MARK: - Content

    @Test func depthOneMergeReadsAsTheChainDid() throws {
        let dir = try MergeTests.folder()
        let (a, c) = try MergeTests.standardPair(dir)
        let expected = try MergeTests.content(c)
        let parentBefore = try MergeTests.content(a)
        // The ranges the child made zero did hold the parent's data: the test can fail.
        for r in [3 * MiB..<4 * MiB, 5 * MiB..<6 * MiB, 4 * MiB + 8192..<4 * MiB + 24576, 6 * MiB + 512..<6 * MiB + 4608] {
            #expect(!MergeTests.isZero(parentBefore[Int(r.lowerBound)..<Int(r.upperBound)]))
            #expect(MergeTests.isZero(expected[Int(r.lowerBound)..<Int(r.upperBound)]))
        }

        let r = try Merger.merge(childPath: c)
        #expect(r.layersMerged == 1)
        #expect(r.removedPaths == [c])
        #expect(!FileManager.default.fileExists(atPath: c))
        // Zeros the child answers by block state (ZERO block 3, UNMAPPED block 5); the zeroed
        // sectors and the zeros written as data are sectors the child holds, so data.
        #expect(r.bytesZeroed == 2 * MiB)
        #expect(r.bytesCopied == MiB + 5 * 512 + 16384 + 4096 + 70_000 / 512 * 512 + 8192)

        let merged = try VHDXFile.openFile(path: a)
        #expect(MergeTests.firstDifference(try MergeTests.content(merged), expected) == nil)
        #expect(merged.header.dataWriteGUID == r.dataWriteGUID)
        // Whole blocks the child answered with ZERO/UNMAPPED became ZERO, their space released.
        #expect(try merged.payloadEntry(block: 3).state == PayloadBlockState.zero.rawValue)
        #expect(try merged.payloadEntry(block: 5).state == PayloadBlockState.zero.rawValue)
        #expect(try Checker.check(path: a).exitCode == 0)
        try MergeTests.qemuCheck(a)

        let raw = dir + "/expected.raw"
        _ = FileManager.default.createFile(atPath: raw, contents: Data(expected))
        let cmp = try vhdx("compare '\(a)' '\(raw)'")
        #expect(cmp.status == 0, "\(cmp.stdout) \(cmp.stderr)")
    }

    /// A <- B <- C <- D, each layer overwriting, zeroing and trimming parts of the ones below.
    static func fourLayers(_ dir: String) throws -> [String] {
        let paths = ["a.vhdx", "b.avhdx", "c.avhdx", "d.avhdx"].map { dir + "/" + $0 }
        try create(paths[0], size: 32 << 20)
        try edit(paths[0]) { try put($0, 1, at: 0, Int(12 * MiB)) }
        try child(paths[1], over: paths[0])
        try edit(paths[1]) { image in
            try put(image, 2, at: 2 * MiB, Int(3 * MiB))
            try image.writeZeroes(at: 6 * MiB, length: MiB)
            try put(image, 3, at: 16 * MiB + 512, 4096)
        }
        try child(paths[2], over: paths[1])
        try edit(paths[2]) { image in
            try put(image, 4, at: 3 * MiB + 1024, 2048)
            try image.trim(at: 8 * MiB, length: MiB)
            try put(image, 5, at: 6 * MiB + 4096, 4096)     // over B's ZERO block
            try image.writeZeroes(at: 2 * MiB + 512, length: 1024)
        }
        try child(paths[3], over: paths[2])
        try edit(paths[3]) { image in
            try put(image, 6, at: 9 * MiB, Int(MiB))
            try image.writeZeroes(at: 10 * MiB, length: 3 * 512)
            try put(image, 7, at: 30 * MiB, 512)
        }
        return paths
    }

    @Test func mergeIntoTheBottomAcrossFourLayers() throws {
        let dir = try MergeTests.folder()
        let p = try MergeTests.fourLayers(dir)
        let expected = try MergeTests.content(p[3])
        let r = try vhdx("merge '\(p[3])' --into '\(p[0])' --json")
        #expect(r.status == 0, "\(r.stderr)")
        let j = try json(r.stdout)
        #expect((j["layers-merged"] as? NSNumber)?.intValue == 3)
        #expect(j["files-removed"] as? [String] == [p[3], p[2], p[1]])
        #expect((j["bytes-copied"] as? NSNumber)?.uint64Value ?? 0 > 3 * MiB)
        #expect(j["grown-from"] is NSNull)
        for path in p.dropFirst() { #expect(!FileManager.default.fileExists(atPath: path)) }
        #expect(MergeTests.firstDifference(try MergeTests.content(p[0]), expected) == nil)
        #expect(try Checker.check(path: p[0]).exitCode == 0)
        try MergeTests.qemuCheck(p[0])
    }

    @Test func mergeIntoADifferencingAncestor() throws {
        let dir = try MergeTests.folder()
        let p = try MergeTests.fourLayers(dir)
        let expected = try MergeTests.content(p[3])
        let bottom = try Shell.sha256(file: p[0])
        let r = try vhdx("merge '\(p[3])' --into '\(p[1])' --json")
        #expect(r.status == 0, "\(r.stderr)")
        #expect((try json(r.stdout)["layers-merged"] as? NSNumber)?.intValue == 2)
        #expect(!FileManager.default.fileExists(atPath: p[3]) && !FileManager.default.fileExists(atPath: p[2]))
        // B over A now reads what D did; A was only read.
        #expect(MergeTests.firstDifference(try MergeTests.content(p[1]), expected) == nil)
        #expect(try Shell.sha256(file: p[0]) == bottom)
        #expect(try Checker.check(path: p[1]).exitCode == 0)
    }

    @Test func largerChildGrowsTheAncestor() throws {
        for fixed in [false, true] {
            let dir = try MergeTests.folder("grow\(fixed)")
            let (a, c) = try MergeTests.standardPair(dir, childSize: 48 << 20, fixedParent: fixed)
            try MergeTests.edit(c) { image in
                try MergeTests.put(image, 8, at: 40 * MiB, Int(MiB) + 4096)
                try MergeTests.put(image, 9, at: 32 * MiB - 512, 1024)   // straddles the parent's end
            }
            let expected = try MergeTests.content(c)
            if fixed {
                // Leaked bytes past the end of what the file references (as a crash can leave):
                // the grown blocks must still read as zeros, as the chain read there.
                let h = try #require(FileHandle(forWritingAtPath: a))
                try h.seekToEnd()
                try h.write(contentsOf: [UInt8](repeating: 0xEE, count: Int(2 * MiB)))
                try h.close()
            }
            let r = try vhdx("merge '\(c)' --json")
            #expect(r.status == 0, "\(r.stderr)")
            let j = try json(r.stdout)
            #expect((j["grown-from"] as? NSNumber)?.uint64Value == 32 << 20)
            #expect((j["virtual-size"] as? NSNumber)?.uint64Value == 48 << 20)
            let merged = try VHDXFile.openFile(path: a)
            #expect(merged.virtualSize == 48 << 20)
            #expect(merged.diskType == (fixed ? .fixed : .dynamic))
            #expect(MergeTests.firstDifference(try MergeTests.content(merged), expected) == nil, "fixed: \(fixed)")
            #expect(try Checker.check(path: a).exitCode == 0)
            try MergeTests.qemuCheck(a)
        }
    }

    @Test func refusesToGrowADifferencingAncestor() throws {
        let dir = try MergeTests.folder()
        let a = dir + "/a.vhdx", b = dir + "/b.avhdx", c = dir + "/c.avhdx"
        try MergeTests.create(a, size: 32 << 20)
        try MergeTests.child(b, over: a)
        try MergeTests.child(c, over: b, size: 48 << 20)
        try MergeTests.edit(c) { try MergeTests.put($0, 1, at: 40 * MiB, 4096) }
        let before = try MergeTests.sha([a, b, c])
        let r = try vhdx("merge '\(c)'")
        #expect(r.status == 1)
        #expect(r.stderr.contains("growing a differencing image is not supported"), "\(r.stderr)")
        #expect(try MergeTests.sha([a, b, c]) == before)
    }

    // MARK: - Linkage

    @Test func siblingsAreCutOff() throws {
        let dir = try MergeTests.folder()
        let (a, c) = try MergeTests.standardPair(dir)
        let s = dir + "/s.avhdx"
        try MergeTests.child(s, over: a)
        try MergeTests.edit(s) { try MergeTests.put($0, 9, at: 0, 4096) }
        _ = try VHDXFile.openChain(path: s)   // linked before
        _ = try Merger.merge(childPath: c)
        #expect(throws: VHDXError(.parentMismatch, "")) { try VHDXFile.openChain(path: s) }
        let r = try vhdx("info '\(s)'")
        #expect(r.status == 0)
        // The user can still look at it, knowing the content is not what it was made over.
        _ = try VHDXFile.openChain(path: s, parents: ParentOptions(ignoreIDMismatch: true))
    }

    @Test func keepLeavesADepthOneChildLinkedAndReadingTheSame() throws {
        let dir = try MergeTests.folder()
        let (a, c) = try MergeTests.standardPair(dir)
        let expected = try MergeTests.content(c)
        let r = try vhdx("merge '\(c)' --keep --json")
        #expect(r.status == 0, "\(r.stderr)")
        let j = try json(r.stdout)
        #expect(j["files-removed"] as? [String] == [])
        #expect(j["unlinked"] is NSNull)
        let top = try VHDXFile.openChain(path: c)
        #expect(top.parentLink?.match == .parentLinkage2)
        #expect(MergeTests.firstDifference(try MergeTests.content(top), expected) == nil)
        #expect(MergeTests.firstDifference(try MergeTests.content(a), expected) == nil)
    }

    @Test func keepUnlinksAnIntermediateLayer() throws {
        let dir = try MergeTests.folder()
        let p = try MergeTests.fourLayers(dir)
        let expected = try MergeTests.content(p[3])
        let r = try vhdx("merge '\(p[3])' --into '\(p[0])' --keep --json")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try json(r.stdout)["unlinked"] as? String == p[1])
        for path in p { #expect(FileManager.default.fileExists(atPath: path)) }
        // B over the merged A would read D's data where B has none: it must not open silently.
        #expect(throws: VHDXError(.parentMismatch, "")) { try VHDXFile.openChain(path: p[1]) }
        #expect(MergeTests.firstDifference(try MergeTests.content(p[0]), expected) == nil)
    }

    @Test func refusesWhatIsNotAnAncestor() throws {
        let dir = try MergeTests.folder()
        let (a, c) = try MergeTests.standardPair(dir)
        let other = dir + "/other.vhdx"
        try MergeTests.create(other, size: 32 << 20)
        let before = try MergeTests.sha([a, c, other])
        var r = try vhdx("merge '\(c)' --into '\(other)'")
        #expect(r.status == 1)
        #expect(r.stderr.contains("not an ancestor"), "\(r.stderr)")
        r = try vhdx("merge '\(c)' --into '\(c)'")
        #expect(r.status == 1)
        #expect(r.stderr.contains("into itself"), "\(r.stderr)")
        r = try vhdx("merge '\(a)'")
        #expect(r.status == 1)
        #expect(r.stderr.contains("not a differencing image"), "\(r.stderr)")
        #expect(try MergeTests.sha([a, c, other]) == before)
    }

    @Test func findsMovedParentsWithParentAndSearchDir() throws {
        let dir = try MergeTests.folder()
        let p = try MergeTests.fourLayers(dir)
        let expected = try MergeTests.content(p[3])
        // B and A move elsewhere: D's locator no longer leads to C's parent, nor C's to B.
        let away = dir + "/moved"
        try FileManager.default.createDirectory(atPath: away, withIntermediateDirectories: true)
        for i in 0...1 { try FileManager.default.moveItem(atPath: p[i], toPath: away + "/" + URL(fileURLWithPath: p[i]).lastPathComponent) }
        var r = try vhdx("merge '\(p[3])' --into '\(away)/a.vhdx'")
        #expect(r.status == 1)
        #expect(r.stderr.contains("parent not found"), "\(r.stderr)")
        r = try vhdx("merge '\(p[3])' --into '\(away)/a.vhdx' --search-dir '\(away)' --json")
        #expect(r.status == 0, "\(r.stderr)")
        #expect((try json(r.stdout)["layers-merged"] as? NSNumber)?.intValue == 3)
        #expect(MergeTests.firstDifference(try MergeTests.content(away + "/a.vhdx"), expected) == nil)

        // --parent names the top's parent.
        let dir2 = try MergeTests.folder("parentOption")
        let (a, c) = try MergeTests.standardPair(dir2)
        let expected2 = try MergeTests.content(c)
        let moved = dir2 + "/elsewhere.vhdx"
        try FileManager.default.moveItem(atPath: a, toPath: moved)
        r = try vhdx("merge '\(c)' --parent '\(moved)'")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(MergeTests.firstDifference(try MergeTests.content(moved), expected2) == nil)
    }

    // MARK: - Interruption

    struct Stop: Error {}

    @Test func rerunningAnInterruptedMergeCompletesIt() throws {
        let dir = try MergeTests.folder()
        let (a, c) = try MergeTests.standardPair(dir, childSize: 40 << 20)
        try MergeTests.edit(c) { try MergeTests.put($0, 7, at: 36 * MiB, Int(MiB)) }
        let expected = try MergeTests.content(c)

        // Stopped half-way through the copy (the progress callback throwing, as a crash would
        // stop it): the ancestor already has its new DataWriteGuid and part of the data.
        var calls = 0
        let first = #expect(throws: VHDXError.self) {
            try Merger.merge(childPath: c) { (done, total) throws(VHDXError) in
                calls += 1
                if done > 0 && done >= total / 2 { throw VHDXError(.io, "stopped by the test", cause: Stop()) }
            }
        }
        #expect(first?.cause is Stop, "\(String(describing: first))")
        #expect(calls >= 2)
        #expect(FileManager.default.fileExists(atPath: c))
        do {  // (handles closed at the end of the scope: the next merge needs the files unlocked)
            let midway = try VHDXFile.openChain(path: c)
            #expect(midway.parentLink?.match == .parentLinkage2)
            #expect(MergeTests.firstDifference(try MergeTests.content(midway), expected) == nil)
            #expect(try VHDXFile.openFile(path: a).virtualSize == 40 << 20)
            #expect(MergeTests.firstDifference(try MergeTests.content(a), expected) != nil, "the first run was not interrupted")
            #expect(try Checker.check(path: a).corruptions == 0)
        }

        // Stopped again at once: a second partial run must keep the chain linked too.
        let second = #expect(throws: VHDXError.self) {
            try Merger.merge(childPath: c) { (done, _) throws(VHDXError) in if done > 0 { throw VHDXError(.io, "stopped", cause: Stop()) } }
        }
        #expect(second?.cause is Stop, "\(String(describing: second))")
        #expect(MergeTests.firstDifference(try MergeTests.content(c), expected) == nil)

        let r = try vhdx("merge '\(c)' --json")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: c))
        #expect(MergeTests.firstDifference(try MergeTests.content(a), expected) == nil)
        try MergeTests.qemuCheck(a)
    }

    /// Once a merge returns, what it did survives a power loss: the ancestor holds the merged
    /// content and the merged files stay deleted. The crash model (`CrashPlan` with lost
    /// unflushed state) undoes every deletion whose directory was not flushed afterwards, so
    /// without the directory fsync after the unlinks (`Merger.remove`) the child comes back.
    @Test func mergedFilesStayDeletedAfterAPowerLoss() throws {
        let dir = try MergeTests.folder()
        let (a, c) = try MergeTests.standardPair(dir)
        let expected = try MergeTests.content(c)
        let plan = CrashPlan(crashAtFlush: .max, loseUnflushed: true)
        let r = try plan.run(in: dir) { try Merger.merge(childPath: c) }
        #expect(r.removedPaths == [c])
        plan.powerLoss()
        #expect(!FileManager.default.fileExists(atPath: c), "the merged child is back after a power loss: its deletion was not made durable (directory fsync)")
        #expect(MergeTests.firstDifference(try MergeTests.content(a), expected) == nil, "the merged ancestor lost data at the power loss")
        #expect(try Checker.check(path: a).corruptions == 0)
    }

    @Test func rerunAfterOnlyTheLinkageStep() throws {
        let dir = try MergeTests.folder()
        let (a, c) = try MergeTests.standardPair(dir)
        let expected = try MergeTests.content(c)
        let parentGUID = try VHDXFile.openFile(path: a).header.dataWriteGUID
        do {
            let child = try VHDXFile.openFile(path: c, writable: true)
            try Merger.recordLinkage(in: child, ancestorDataWriteGUID: parentGUID)
        }
        do {
            let linked = try VHDXFile.openChain(path: c)
            #expect(linked.parentLink?.match == .parentLinkage)
            #expect(linked.layout.parentLocator?.parentLinkage2 != nil)
            #expect(MergeTests.firstDifference(try MergeTests.content(linked), expected) == nil)
        }
        let r = try vhdx("merge '\(c)' --progress")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("merging: 100%"), "\(r.stderr)")
        #expect(MergeTests.firstDifference(try MergeTests.content(a), expected) == nil)
    }

    // MARK: - Crash at every flush point

    /// Bytes in memory like MemoryStorage, but growing with memset: MemoryStorage appends a
    /// zero at a time, about a second per MiB in a debug build, and a merge grows the file
    /// by a block per allocation.
    final class BytesStorage: Storage {
        private(set) var bytes: [UInt8]
        let isWritable: Bool
        var name: String { "<bytes>" }

        init(_ bytes: [UInt8], writable: Bool = true) {
            self.bytes = bytes
            self.isWritable = writable
        }

        func size() throws(VHDXError) -> UInt64 { UInt64(bytes.count) }

        func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) {
            guard offset <= UInt64(bytes.count), UInt64(buffer.count) <= UInt64(bytes.count) - offset else {
                throw VHDXError(.outOfBounds, "read of \(buffer.count) bytes at \(offset) past the end (\(bytes.count))", at: offset)
            }
            bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count])) }
        }

        func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
            guard isWritable else { throw VHDXError(.readOnly, "write to read-only test storage", at: offset) }
            let end = Int(offset) + buffer.count
            if end > bytes.count { try resize(to: UInt64(end)) }
            bytes.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[Int(offset)..<end]).copyMemory(from: buffer) }
        }

        func resize(to size: UInt64) throws(VHDXError) {
            guard isWritable else { throw VHDXError(.readOnly, "resize of read-only test storage") }
            let n = Int(size), old = bytes.count
            if n <= old { bytes.removeLast(old - n); return }
            bytes = [UInt8](unsafeUninitializedCapacity: n) { buffer, count in
                bytes.withUnsafeBytes { src in
                    if old > 0 { memcpy(buffer.baseAddress!, src.baseAddress!, old) }
                }
                memset(buffer.baseAddress! + old, 0, n - old)
                count = n
            }
        }

        func synchronize() throws(VHDXError) {}
    }

    /// Layers as bytes, top first, the ancestor last; `expected` is what the top reads.
    struct Scenario: CustomStringConvertible, Sendable {
        let description: String
        let layers: [[UInt8]]
        let expected: [UInt8]
        /// Zeros appended to the ancestor's file for the fold crash test, so its blocks are
        /// allocated inside the file (unreferenced space is reused after a discard) instead
        /// of growing it: CrashStorage grows a file a byte at a time, which in a debug build
        /// costs most of this suite's time. The other scenarios keep the growing path.
        var ancestorSlack = 0
    }

    /// Small chains built on files once, then used as bytes on memory and crash storage.
    static let scenarios: [Scenario] = {
        func build(_ name: String, _ sizes: [UInt64], fixed: Bool = false) throws -> Scenario {
            let dir = try folder(name)
            var paths = [dir + "/l0.vhdx"]
            try create(paths[0], size: sizes[0], fixed: fixed)
            try edit(paths[0]) { image in
                try put(image, 1, at: 0, Int(6 * MiB))
            }
            for (i, size) in sizes.enumerated().dropFirst() {
                let p = dir + "/l\(i).avhdx"
                try child(p, over: paths.last!, size: size)
                paths.append(p)
                let s = UInt8(10 * i)
                try edit(p) { image in
                    try put(image, s, at: UInt64(i) * MiB, Int(MiB))                       // whole block
                    try put(image, s + 1, at: 2 * MiB + UInt64(i) * 4096, 3 * 512)          // a few sectors
                    try image.writeZeroes(at: UInt64(2 + i) * MiB, length: MiB)             // ZERO over data
                    try image.writeZeroes(at: 5 * MiB + UInt64(i) * 8192, length: 2048)     // zero sectors
                    try image.trim(at: 4 * MiB, length: MiB)                                // UNMAPPED
                    try put(image, s + 2, at: size - MiB - 4096, 8192)                      // near the end
                }
            }
            let expected = try content(paths.last!)
            let layers = try paths.reversed().map { [UInt8](try Data(contentsOf: URL(fileURLWithPath: $0))) }
            return Scenario(description: name, layers: layers, expected: expected)
        }
        var three = try! build("3 layers into the bottom", [8 << 20, 10 << 20, 12 << 20])
        three.ancestorSlack = 8 << 20
        return [try! build("depth 1, child larger", [8 << 20, 12 << 20]), three]
    }()

    /// Growing a fixed ancestor allocates its new blocks: another path through resize.
    static let fixedScenario: Scenario = {
        let dir = try! folder("fixed ancestor")
        let a = dir + "/a.vhdx", c = dir + "/c.avhdx"
        try! create(a, size: 6 << 20, fixed: true)
        try! edit(a) { try put($0, 1, at: 0, Int(5 * MiB)) }
        try! child(c, over: a, size: 8 << 20)
        try! edit(c) { image in
            try put(image, 2, at: 1 * MiB + 4096, 8192)
            try image.writeZeroes(at: 3 * MiB, length: MiB)
            try image.trim(at: 4 * MiB, length: MiB)
            try put(image, 3, at: 7 * MiB, 4096)
        }
        let layers = try! [c, a].map { [UInt8](try Data(contentsOf: URL(fileURLWithPath: $0))) }
        return Scenario(description: "fixed ancestor, child larger", layers: layers, expected: try! content(c))
    }()

    /// Opens the layers (top first) and links each to the next as `openChain` would accept
    /// it: the parent's DataWriteGuid must be the child's parent_linkage or parent_linkage2.
    static func chain(_ storages: [Storage]) throws -> VHDXFile {
        let images = try storages.map { try VHDXFile(storage: $0) }
        for i in 0..<images.count - 1 {
            let locator = try #require(images[i].layout.parentLocator)
            let g = images[i + 1].header.dataWriteGUID
            guard g == locator.parentLinkage || (g == locator.parentLinkage2 && g != .zero) else {
                throw TestFailure("layer \(i + 1)'s DataWriteGuid {\(g)} is neither linkage of layer \(i): \(locator.entries)")
            }
            images[i].parent = images[i + 1]
        }
        return images[0]
    }

    static func readOnly(_ layers: [[UInt8]]) -> [Storage] { layers.map { BytesStorage($0, writable: false) } }

    /// (a) the crashed chain opens and reads the original content; (b) with `rerun`, running
    /// the merge again on it completes it. `layers` is the state after the crash, top first.
    static func verifyAfterCrash(_ s: Scenario, _ layers: [[UInt8]], _ context: String, rerun: Bool) throws {
        for (i, l) in layers.enumerated() {
            let report = try Checker.check(storage: BytesStorage(l, writable: false))
            #expect(report.corruptions == 0, "\(context): layer \(i): \(report.findings)")
        }
        let top = try chain(readOnly(layers))
        #expect(firstDifference(try content(top), s.expected) == nil, "\(context): the chain reads differently")
        guard rerun else { return }

        let k = layers.count - 1
        // Only the layer above the ancestor and the ancestor are written.
        let storages = layers.enumerated().map { i, l in BytesStorage(l, writable: i >= k - 1) }
        let again = try Merger(top: try chain(storages), ancestorLayer: k).run()
        #expect(again.layersMerged == k)
        let ancestor = try VHDXFile(storage: BytesStorage(storages[k].bytes, writable: false))
        #expect(ancestor.header.dataWriteGUID == again.dataWriteGUID)
        #expect(firstDifference(try content(ancestor), s.expected) == nil, "\(context): the re-run merge gives other content")
        // A crash may leak space (an unreferenced block, a released block not yet zeroed);
        // nothing may be corrupt.
        let after = try Checker.check(storage: BytesStorage(storages[k].bytes, writable: false))
        #expect(after.corruptions == 0, "\(context): after the re-run: \(after.findings)")
        // The top still links to the merged ancestor through the chain.
        _ = try chain(readOnly(storages.map(\.bytes)))
    }

    @Test("crash at every flush point of the linkage step", arguments: scenarios)
    func crashDuringLinkage(_ s: Scenario) throws {
        let k = s.layers.count - 1
        let guid = try VHDXFile(storage: BytesStorage(s.layers[k], writable: false)).header.dataWriteGUID
        func session(_ storage: CrashStorage) -> Bool {
            do {
                try Merger.recordLinkage(in: try VHDXFile(storage: storage), ancestorDataWriteGUID: guid)
                return true
            } catch { return false }
        }
        let clean = CrashStorage(s.layers[k - 1])
        #expect(session(clean))
        let flushes = clean.flushes
        #expect(flushes >= 4)
        for f in 0..<flushes {
            let storage = CrashStorage(s.layers[k - 1])
            storage.crashAtFlush = f
            #expect(!session(storage), "no crash at flush \(f)")
            let seeds = TestScale.seeds(2)
            for seed in seeds {
                var layers = s.layers
                layers[k - 1] = storage.crashImage(seed: seed &* 7919 &+ UInt64(f))
                // The re-run once per crash point (the slow part in a debug build), the chain
                // check for every tear pattern.
                try MergeTests.verifyAfterCrash(s, layers, "\(s) linkage crash at flush \(f)/\(flushes) \(TestScale.replay(seed: seed, filter: "MergeTests/crashDuringLinkage"))", rerun: seed == seeds[0])
            }
        }
    }

    @Test("crash at every flush point of the ancestor's fold", arguments: scenarios + [fixedScenario])
    func crashDuringFold(_ s: Scenario) throws {
        let k = s.layers.count - 1
        // The linkage step done cleanly first (its own crashes are the test above).
        var linked = s.layers
        let above = BytesStorage(s.layers[k - 1])
        let oldGUID = try VHDXFile(storage: BytesStorage(s.layers[k], writable: false)).header.dataWriteGUID
        let g = try Merger.recordLinkage(in: try VHDXFile(storage: above), ancestorDataWriteGUID: oldGUID)
        linked[k - 1] = above.bytes

        func session(_ storage: CrashStorage) -> Bool {
            do {
                var storages: [Storage] = MergeTests.readOnly(Array(linked[0..<k]))
                storages.append(storage)
                _ = try Merger(top: try MergeTests.chain(storages), ancestorLayer: k).fold(newGUID: g)
                return true
            } catch { return false }
        }
        let ancestor = s.layers[k] + [UInt8](repeating: 0, count: s.ancestorSlack)
        let clean = CrashStorage(ancestor)
        #expect(session(clean))
        let done = try VHDXFile(storage: BytesStorage(clean.durable, writable: false))
        #expect(try Checker.check(storage: BytesStorage(clean.durable, writable: false)).exitCode == 0)
        #expect(MergeTests.firstDifference(try MergeTests.content(done), s.expected) == nil, "\(s): the clean fold")
        let flushes = clean.flushes
        #expect(flushes >= 10)
        for f in 0..<flushes {
            let storage = CrashStorage(ancestor)
            storage.crashAtFlush = f
            #expect(!session(storage), "no crash at flush \(f)")
            let seeds = TestScale.seeds(2)
            for seed in seeds {
                var layers = linked
                layers[k] = storage.crashImage(seed: seed &* 7919 &+ UInt64(f))
                try MergeTests.verifyAfterCrash(s, layers, "\(s) fold crash at flush \(f)/\(flushes) \(TestScale.replay(seed: seed, filter: "MergeTests/crashDuringFold"))", rerun: seed == seeds[0])
            }
        }
    }
}
