import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

/// Opening and reading differencing chains: the Windows checkpoint fixture over its stand-in
/// parent (found by the locator's relative path, by --search-dir and by --parent), a missing
/// parent, a parent with another DataWriteGuid, the parent_linkage2 match, cycles, depth and
/// sector-size limits, and read-only opens that leave every layer byte-identical.
@Suite("Chain reading")
struct ChainReadTests {
    /// The file name the fixture's locator gives its parent (relative_path `.\<name>`).
    static let parentName = "Generation 1_49C4BAF3-4B25-4406-8C4B-D39E65C32385.avhdx"
    /// SHA-256 of the fixture's 8 GiB virtual disk read over the stand-in parent (fixtures README).
    static let expectedSHA = "fc5c91bfd8f7ee388cf482dc7eb6cef64b39a7e1bd043516ee95887b839f2b78"
    static let MiB: UInt64 = 1 << 20

    // MARK: - Helpers

    /// A new, empty directory with a canonical path (what the engine prints in its messages).
    static func freshDir(_ name: String = "chain") throws -> String {
        let d = Fixtures.tempPath(name)
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return try #require(realPath(d))
    }

    /// A private copy of a shared fixture at `dir/name` (the inflated fixtures are never written).
    @discardableResult
    static func place(_ fixture: String, in dir: String, as name: String) throws -> String {
        let out = dir + "/" + name
        try FileManager.default.copyItem(atPath: try Fixtures.path(fixture), toPath: out)
        return out
    }

    /// The fixture child at `dir/child.avhdx`, with the stand-in parent beside it under the
    /// locator's name when `withParent`.
    static func windowsChain(withParent: Bool = true) throws -> (dir: String, child: String) {
        let dir = try freshDir("win")
        let child = try place("differencing.avhdx", in: dir, as: "child.avhdx")
        if withParent { try place("differencing-standin-parent.vhdx", in: dir, as: parentName) }
        return (dir, child)
    }

    /// Runs `body` (an open), again after 20 ms while it fails with "in use", up to a second.
    /// Why: a process that another test thread spawns holds a copy of every descriptor of this
    /// process from its fork to its exec (O_CLOEXEC acts only at exec), flock included, so a
    /// lock released a moment ago may still be held briefly. Measured here: 2,812 of 426,937
    /// exclusive LOCK_NB attempts right after a close failed while two threads spawned
    /// /bin/true. A lock that is really held still fails after the retries.
    static func settled<T>(_ body: () throws -> T) throws -> T {
        var attempt = 0
        while true {
            do { return try body() } catch let error as VHDXError where (error.code == .inUse || error.message.contains("in use")) && attempt < 50 {
                attempt += 1
                usleep(20_000)
            }
        }
    }

    static func openChain(_ path: String, _ options: ParentOptions = .default) throws -> VHDXFile {
        try settled { try VHDXFile.openChain(path: path, parents: options) }
    }

    static func open(_ path: String) throws -> VHDXFile {
        try settled { try VHDXFile.openFile(path: path) }
    }

    static func openWritable(_ path: String) throws -> VHDXFile {
        try settled { try VHDXFile.openFile(path: path, writable: true) }
    }

    static func openChainWritable(_ path: String) throws -> VHDXFile {
        try settled { try VHDXFile.openChain(path: path, writable: true) }
    }

    /// The error `openChain` throws, or nil when the chain opens.
    static func openError(_ path: String, _ options: ParentOptions = .default) -> VHDXError? {
        do { _ = try settled { try VHDXFile.openChain(path: path, parents: options) }; return nil } catch {
            return error as? VHDXError
        }
    }

    /// Everything a chain's content is made of, cheaply: the resolved extents (data or a kind
    /// that reads as zeros) and the bytes of every data extent, read through the chain. Two
    /// chains with equal digests read identically (a full 8 GiB hash costs seconds each).
    static func contentDigest(_ image: VHDXFile) throws -> (extents: [String], data: [UInt8]) {
        var extents: [String] = []
        var data: [UInt8] = []
        try image.forEachResolvedExtent { (e) throws(VHDXError) in
            let isData = e.kind == .data
            extents.append("\(e.virtualOffset)+\(e.length) \(isData ? "data" : "zeros")")
            if isData { data += try image.read(at: e.virtualOffset, count: Int(e.length)) }
        }
        #expect(!data.isEmpty)
        #expect(data.contains { $0 != 0 })
        return (extents, data)
    }

    static func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    static func dataWriteGUID(_ path: String) throws -> GUID {
        try settled { try VHDXFile.openFile(path: path) }.header.dataWriteGUID
    }

    /// A small dynamic image written with `fill` over its first `written` bytes.
    static func makeBase(_ path: String, size: UInt64 = 8 << 20, logical: UInt32 = 512, fill: UInt8 = 0x5a, written: UInt64 = 3 << 20) throws {
        var o = CreateOptions(virtualSize: size)
        o.blockSize = 1 << 20
        o.logicalSectorSize = logical
        try VHDXCreator.create(path: path, options: o)
        let f = try ChainReadTests.openWritable(path)
        try f.write([UInt8](repeating: fill, count: Int(written)), at: 0)
        try f.close()
    }

    static func makeChild(_ path: String, over parent: String, blockSize: UInt32 = 1 << 20, size: UInt64? = nil) throws {
        var c = ChildOptions()
        c.blockSize = blockSize
        c.virtualSize = size
        try settled { try VHDXCreator.createChild(path: path, parentPath: parent, options: c) }
    }

    /// Replaces a child's locator (a writable open of the child alone; its parents stay shut).
    static func setLocator(_ child: String, linkage: GUID, linkage2: GUID? = nil, relative: String) throws {
        var entries: [(key: String, value: String)] = [("parent_linkage", "{\(linkage)}")]
        if let linkage2 { entries.append(("parent_linkage2", "{\(linkage2)}")) }
        entries.append(("relative_path", relative))
        let f = try ChainReadTests.openWritable(child)
        try f.setParentLocator(ParentLocator(entries: entries))
        try f.close()
    }

    // MARK: - The Windows checkpoint over its stand-in parent

    @Test("the Windows .avhdx reads to its known SHA-256 through the engine, parent found by relative_path")
    func windowsFixtureEngine() throws {
        let (dir, child) = try ChainReadTests.windowsChain()
        let image = try ChainReadTests.openChain(child)
        #expect(image.chain.count == 2)
        let link = try #require(image.parentLink)
        #expect(link.path == dir + "/" + ChainReadTests.parentName)
        #expect(link.match == .parentLinkage)
        #expect(link.rejected.isEmpty)
        #expect(image.parent?.isWritable == false)
        // The README's first non-zero run is 0x100400..<0x100800; the sector before reads zeros.
        let first = try image.read(at: 0x100000, count: 0x800)
        #expect(first[0..<0x400].allSatisfy { $0 == 0 })
        #expect(first[0x400..<0x800].contains { $0 != 0 })
        #expect(try contentSHA256(image) == ChainReadTests.expectedSHA)
    }

    @Test("`vhdx convert CHILD -` streams the chain's content (known SHA-256)")
    func windowsFixtureCLI() throws {
        let (_, child) = try ChainReadTests.windowsChain()
        let r = try Shell.run("set -o pipefail; '\(try vhdxBinary())' convert '\(child)' - | \(Shell.sha256Command) -", allowFailure: true)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(String(r.stdout.prefix(64)) == ChainReadTests.expectedSHA)
    }

    @Test("--search-dir finds the parent by its locator file name in another folder")
    func windowsFixtureSearchDir() throws {
        let (dir, child) = try ChainReadTests.windowsChain(withParent: false)
        let elsewhere = try ChainReadTests.freshDir("search")
        try ChainReadTests.place("differencing-standin-parent.vhdx", in: elsewhere, as: ChainReadTests.parentName)
        // Without the search directory it is not found…
        #expect(ChainReadTests.openError(child)?.code == .parentNotFound)
        // …with it, it is, after the locator's own paths were tried.
        let image = try ChainReadTests.openChain(child, ParentOptions(searchDirectories: [elsewhere]))
        let link = try #require(image.parentLink)
        #expect(link.path == elsewhere + "/" + ChainReadTests.parentName)
        #expect(link.match == .parentLinkage)
        #expect(link.rejected.contains { $0.hasPrefix(dir + "/" + ChainReadTests.parentName) })
        // The CLI: identical to the chain found by relative_path (whose SHA-256 the tests above
        // check; compare skips what both leave unallocated, so this costs no 8 GiB hash).
        let (_, located) = try ChainReadTests.windowsChain()
        let r = try ChainReadTests.vhdx("compare '\(child)' '\(located)' --search-dir '\(elsewhere)' --json")
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("identical"))
        #expect(try ChainReadTests.vhdx("compare '\(child)' '\(located)'").status == 2)
    }

    @Test("--parent names a parent elsewhere under another name; it reads like the located one")
    func windowsFixtureParentOverride() throws {
        let (_, located) = try ChainReadTests.windowsChain()
        let (_, child) = try ChainReadTests.windowsChain(withParent: false)
        let other = try ChainReadTests.freshDir("override")
        let parent = try ChainReadTests.place("differencing-standin-parent.vhdx", in: other, as: "standin.vhdx")
        let image = try ChainReadTests.openChain(child, ParentOptions(parentPath: parent))
        #expect(image.parentLink?.path == parent)
        #expect(image.parentLink?.match == .parentLinkage)
        let reference = try ChainReadTests.contentDigest(try ChainReadTests.openChain(located))
        let viaOverride = try ChainReadTests.contentDigest(image)
        #expect(viaOverride.extents == reference.extents)
        #expect(viaOverride.data == reference.data)
        // The data extents hold the README's 2,290,176 bytes of non-zero sectors (4,473 sectors
        // of 512 bytes with at least one non-zero byte; every extent is whole sectors).
        let nonZeroSectors = stride(from: 0, to: reference.data.count, by: 512).filter { s in
            reference.data[s..<min(s + 512, reference.data.count)].contains { $0 != 0 }
        }.count
        #expect(nonZeroSectors * 512 == 2_290_176)
        // CLI: with --parent the child compares identical to the located chain; without, it
        // cannot be opened (exit 2, compare's error code).
        let ok = try ChainReadTests.vhdx("compare '\(child)' '\(located)' --parent '\(parent)'")
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        let missing = try ChainReadTests.vhdx("compare '\(child)' '\(located)'")
        #expect(missing.status == 2, "\(missing.stdout)\(missing.stderr)")
        #expect(missing.stderr.contains("parent not found"))
    }

    // MARK: - Missing and mismatched parents

    @Test("without its parent: parentNotFound naming every path tried; the CLI exits 1 and says so")
    func windowsFixtureMissingParent() throws {
        let (dir, child) = try ChainReadTests.windowsChain(withParent: false)
        let error = try #require(ChainReadTests.openError(child))
        #expect(error.code == .parentNotFound)
        // relative_path against the child's folder, volume_path without its volume, and
        // absolute_win32_path on WSL's /mnt/c and from /.
        let winDir = "/Users/Public/Documents/Hyper-V/Virtual hard disks/" + ChainReadTests.parentName
        let tried = [dir + "/" + ChainReadTests.parentName, winDir, "/mnt/c" + winDir]
        for path in tried { #expect(error.message.contains(path), "\(path) missing from: \(error.message)") }
        // A plain open still inspects it; only reading data that lives in the parent fails.
        let plain = try ChainReadTests.open(child)
        #expect(plain.diskType == .differencing)
        #expect(throws: VHDXError(.parentNotFound, "")) { try plain.read(at: 0, count: 512) }

        let r = try ChainReadTests.vhdx("convert '\(child)' -")
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("parent not found"), "\(r.stderr)")
        for path in tried { #expect(r.stderr.contains(path), "\(path) missing from: \(r.stderr)") }
    }

    @Test("a parent with another DataWriteGuid is a mismatch; --ignore-id-mismatch accepts it (match .ignored)",
          arguments: ["vhdx-made", "iotest-dynamic-1G.vhdx"])
    func windowsFixtureWrongParent(_ kind: String) throws {
        let (dir, child) = try ChainReadTests.windowsChain(withParent: false)
        let wrong = dir + "/" + ChainReadTests.parentName
        if kind == "vhdx-made" {
            // Same size and sector size as the real parent, all zeros: only the GUID differs.
            var o = CreateOptions(virtualSize: 8 << 30)
            o.logicalSectorSize = 512
            try VHDXCreator.create(path: wrong, options: o)
        } else {
            try ChainReadTests.place(kind, in: dir, as: ChainReadTests.parentName)
        }
        let before = try Shell.sha256(file: wrong)
        let error = try #require(ChainReadTests.openError(child))
        #expect(error.code == .parentMismatch)
        #expect(error.message.contains(wrong))
        #expect(error.message.contains("{\(try ChainReadTests.dataWriteGUID(wrong))}"))
        #expect(error.message.contains("ff34003b-11ed-4cf8-a166-b2be05e20b80"))

        let image = try ChainReadTests.openChain(child, ParentOptions(ignoreIDMismatch: true))
        #expect(image.parentLink?.match == .ignored)
        #expect(image.parentLink?.path == wrong)
        if kind == "vhdx-made" {
            // All-zero parent like the stand-in: the same content as the real chain.
            let (_, located) = try ChainReadTests.windowsChain()
            let reference = try ChainReadTests.contentDigest(try ChainReadTests.openChain(located))
            let got = try ChainReadTests.contentDigest(image)
            #expect(got.data == reference.data)
            #expect(got.extents.filter { $0.hasSuffix("data") } == reference.extents.filter { $0.hasSuffix("data") })
        } else {
            // The 1 GiB Hyper-V image: block 0 of the child is not present, so its 0xa5 shows
            // through; past the parent's 1 GiB end, not-present blocks read zeros.
            #expect(try image.read(at: 0, count: 4096).allSatisfy { $0 == 0xa5 })
            #expect(try image.read(at: 33 << 20, count: 4096).allSatisfy { $0 == 0x96 })
            #expect(try image.read(at: (1 << 30) - 4096, count: 8192).allSatisfy { $0 == 0 })
        }

        let refused = try ChainReadTests.vhdx("map '\(child)'")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("parent mismatch"), "\(refused.stderr)")
        let accepted = try ChainReadTests.vhdx("map '\(child)' --ignore-id-mismatch")
        #expect(accepted.status == 0, "\(accepted.stderr)")
        #expect(try Shell.sha256(file: wrong) == before)
    }

    @Test("a mismatching parent at the relative path does not hide a matching one in a search directory")
    func matchingCandidateWins() throws {
        let (dir, child) = try ChainReadTests.windowsChain(withParent: false)
        try ChainReadTests.place("iotest-dynamic-1G.vhdx", in: dir, as: ChainReadTests.parentName)
        let elsewhere = try ChainReadTests.freshDir("good")
        try ChainReadTests.place("differencing-standin-parent.vhdx", in: elsewhere, as: ChainReadTests.parentName)
        let image = try ChainReadTests.openChain(child, ParentOptions(searchDirectories: [elsewhere]))
        #expect(image.parentLink?.path == elsewhere + "/" + ChainReadTests.parentName)
        #expect(image.parentLink?.match == .parentLinkage)
        #expect(image.parentLink?.rejected.contains { $0.hasPrefix(dir + "/" + ChainReadTests.parentName) && $0.contains("DataWriteGuid") } == true)
        #expect(try image.read(at: 0, count: 4096).allSatisfy { $0 == 0 })
    }

    // MARK: - parent_linkage2

    @Test("a child whose parent_linkage2 (not parent_linkage) matches opens with match .parentLinkage2")
    func parentLinkage2() throws {
        let dir = try ChainReadTests.freshDir("l2")
        let base = dir + "/base.vhdx", child = dir + "/child.avhdx"
        try ChainReadTests.makeBase(base)
        try ChainReadTests.makeChild(child, over: base)
        do {
            let c = try ChainReadTests.openWritable(child)
            try c.write([UInt8](repeating: 0x77, count: 4096), at: 4096)
            try c.close()
        }
        // The merge step: the parent's content changes (so its DataWriteGuid does), and the
        // child's locator gets the new GUID in parent_linkage2 while parent_linkage keeps the old.
        let old = try ChainReadTests.dataWriteGUID(base)
        do {
            let b = try ChainReadTests.openWritable(base)
            try b.write([UInt8](repeating: 0x66, count: 512), at: 2 << 20)
            try b.close()
        }
        let new = try ChainReadTests.dataWriteGUID(base)
        #expect(new != old)
        #expect(ChainReadTests.openError(child)?.code == .parentMismatch)
        try ChainReadTests.setLocator(child, linkage: old, linkage2: new, relative: ".\\base.vhdx")
        do {  // scoped: its shared lock would keep setLocator's writable open out
            let image = try ChainReadTests.openChain(child)
            #expect(image.parentLink?.match == .parentLinkage2)
            #expect(image.parentLink?.path == base)
            #expect(try image.read(at: 4096, count: 4096).allSatisfy { $0 == 0x77 })
            #expect(try image.read(at: 0, count: 4096).allSatisfy { $0 == 0x5a })
            #expect(try image.read(at: 2 << 20, count: 512).allSatisfy { $0 == 0x66 })
        }
        // parent_linkage matching wins over linkage2, and either alone is enough.
        try ChainReadTests.setLocator(child, linkage: new, linkage2: old, relative: ".\\base.vhdx")
        #expect(try ChainReadTests.openChain(child).parentLink?.match == .parentLinkage)
        // Neither matching: a mismatch that names both.
        let stranger = GUID.random()
        try ChainReadTests.setLocator(child, linkage: stranger, linkage2: old, relative: ".\\base.vhdx")
        let error = try #require(ChainReadTests.openError(child))
        #expect(error.code == .parentMismatch)
        #expect(error.message.contains("\(stranger)") && error.message.contains("\(old)"))
        #expect(try Checker.check(path: child).exitCode == 0)
    }

    // MARK: - Cycles, depth, sector sizes

    @Test("a cyclic chain (A → B → A, a self-reference, a cycle through a symlink) is refused, never followed")
    func cycles() throws {
        let dir = try ChainReadTests.freshDir("cycle")
        let base = dir + "/base.vhdx", a = dir + "/a.avhdx", b = dir + "/b.avhdx", s = dir + "/self.avhdx"
        try ChainReadTests.makeBase(base)
        for c in [a, b, s] { try ChainReadTests.makeChild(c, over: base) }
        // setParentLocator does not renew DataWriteGuid, so the GUIDs read here stay valid.
        let ga = try ChainReadTests.dataWriteGUID(a), gb = try ChainReadTests.dataWriteGUID(b)
        try ChainReadTests.setLocator(a, linkage: gb, relative: ".\\b.avhdx")
        try ChainReadTests.setLocator(b, linkage: ga, relative: ".\\a.avhdx")
        #expect(try ChainReadTests.dataWriteGUID(a) == ga && ChainReadTests.dataWriteGUID(b) == gb)
        for top in [a, b] {
            let error = try #require(ChainReadTests.openError(top))
            #expect(error.code == .cyclicChain && error.message.contains("cyclic"), "\(error)")
        }
        // Even accepting any GUID, the cycle is found.
        #expect(ChainReadTests.openError(a, ParentOptions(ignoreIDMismatch: true))?.message.contains("cyclic") == true)
        let r = try ChainReadTests.vhdx("convert '\(a)' -")
        #expect(r.status == 1 && r.stderr.contains("cyclic"), "\(r.stderr)")

        try ChainReadTests.setLocator(s, linkage: try ChainReadTests.dataWriteGUID(s), relative: ".\\self.avhdx")
        #expect(ChainReadTests.openError(s)?.message.contains("cyclic") == true)

        // B now points at A through another name: the same file (device and inode) is caught.
        #expect(symlink(a, dir + "/a-link.avhdx") == 0)
        try ChainReadTests.setLocator(b, linkage: ga, relative: ".\\a-link.avhdx")
        #expect(ChainReadTests.openError(a)?.message.contains("cyclic") == true)
        // Undo A's half: A → base again, and the chain B → A → base opens.
        try ChainReadTests.setLocator(a, linkage: try ChainReadTests.dataWriteGUID(base), relative: ".\\base.vhdx")
        let ok = try ChainReadTests.openChain(b)
        #expect(ok.chain.count == 3)
        #expect(try ok.read(at: 0, count: 512).allSatisfy { $0 == 0x5a })
    }

    @Test("a chain deeper than ParentOptions.maxDepth is refused; one exactly that deep opens")
    func depthLimit() throws {
        let dir = try ChainReadTests.freshDir("depth")
        var layers = [dir + "/base.vhdx"]
        try ChainReadTests.makeBase(layers[0])
        for i in 1...4 {
            layers.append(dir + "/c\(i).avhdx")
            try ChainReadTests.makeChild(layers[i], over: layers[i - 1])
        }
        var options = ParentOptions()
        options.maxDepth = 3
        // c3 has three differencing layers (c3, c2, c1) over the base: allowed.
        let three = try ChainReadTests.openChain(layers[3], options)
        #expect(three.chain.count == 4)
        #expect(try three.read(at: 0, count: 512).allSatisfy { $0 == 0x5a })
        // c4 has four.
        let error = try #require(ChainReadTests.openError(layers[4], options))
        #expect(error.message.contains("deeper than 3"), "\(error)")
        // The default limit lets it through.
        #expect(try ChainReadTests.openChain(layers[4]).chain.count == 5)
    }

    @Test("a parent with another logical sector size is refused, even with a matching GUID or --ignore-id-mismatch")
    func sectorSizeMismatch() throws {
        let dir = try ChainReadTests.freshDir("lss")
        let p512 = dir + "/p512.vhdx", p4k = dir + "/p4k.vhdx", child = dir + "/child.avhdx"
        try ChainReadTests.makeBase(p512, logical: 512)
        try ChainReadTests.makeBase(p4k, logical: 4096)
        try ChainReadTests.makeChild(child, over: p512)
        #expect(try ChainReadTests.openChain(child).parentLink?.path == p512)
        // The 4096-byte parent, with its DataWriteGuid as the linkage: only the sector size differs.
        try ChainReadTests.setLocator(child, linkage: try ChainReadTests.dataWriteGUID(p4k), relative: ".\\p4k.vhdx")
        for options in [ParentOptions(), ParentOptions(ignoreIDMismatch: true), ParentOptions(parentPath: p4k, ignoreIDMismatch: true)] {
            let error = try #require(ChainReadTests.openError(child, options))
            #expect(error.message.contains("logical sector size 4096"), "\(error)")
        }
    }

    // MARK: - Read-only means read-only

    @Test("read-only opens of a chain (engine and every read-only CLI command) never modify any layer; a writable top leaves its parents alone")
    func readOnlyOpensLeaveLayersUnchanged() throws {
        let dir = try ChainReadTests.freshDir("ro")
        let base = dir + "/base.vhdx", mid = dir + "/mid.avhdx", top = dir + "/top.avhdx"
        try ChainReadTests.makeBase(base)
        try ChainReadTests.makeChild(mid, over: base, blockSize: 2 << 20)
        do {
            let m = try ChainReadTests.openChainWritable(mid)
            try m.write([UInt8](repeating: 0x31, count: 5000), at: 1000)
            try m.close()
        }
        try ChainReadTests.makeChild(top, over: mid, size: 12 << 20)
        do {
            let t = try ChainReadTests.openChainWritable(top)
            try t.write([UInt8](repeating: 0x42, count: 700), at: (2 << 20) - 300)
            try t.writeZeroes(at: 5 << 20, length: 1 << 20)
            try t.close()
        }
        let layers = [base, mid, top]
        let before = try layers.map { try Shell.sha256(file: $0) }

        do {
            let image = try ChainReadTests.openChain(top)
            #expect(image.chain.count == 3)
            #expect(image.chain.allSatisfy { !$0.isWritable })
            let all = try image.read(at: 0, count: Int(image.virtualSize))
            #expect(all[0..<1000].allSatisfy { $0 == 0x5a })
            #expect(all[1000..<6000].allSatisfy { $0 == 0x31 })
            #expect(all[Int(2 << 20) - 300..<Int(2 << 20) + 400].allSatisfy { $0 == 0x42 })
            #expect(all[Int(3 << 20)..<Int(12 << 20)].allSatisfy { $0 == 0 })
            _ = try image.resolvedExtents()
        }
        for cmd in ["info '\(top)'", "info --json '\(top)'", "map '\(top)'", "map --json '\(mid)'", "check '\(top)'", "check '\(mid)'",
                    "compare '\(top)' '\(mid)'", "convert '\(top)' -", "convert '\(top)' '\(dir)/flat.vhdx'", "convert '\(top)' '\(dir)/flat.raw'"] {
            let r = try ChainReadTests.vhdx(cmd)
            // The top differs from its parent (compare exit 1); everything else succeeds.
            #expect(r.status == (cmd.hasPrefix("compare") ? 1 : 0), "\(cmd): \(r.stdout)\(r.stderr)")
        }
        #expect(try layers.map { try Shell.sha256(file: $0) } == before, "a read-only open modified a layer")

        // A writable open of the top writes the top only.
        do {
            let t = try ChainReadTests.openChainWritable(top)
            #expect(t.parent?.isWritable == false && t.parent?.parent?.isWritable == false)
            try t.write([UInt8](repeating: 0x99, count: 4096), at: 0)
            try t.close()
        }
        #expect(try Shell.sha256(file: base) == before[0])
        #expect(try Shell.sha256(file: mid) == before[1])
        #expect(try Shell.sha256(file: top) != before[2])
    }

    @Test("a parent with a pending log is replayed in memory under a child, and stays byte-identical")
    func dirtyLogParent() throws {
        let dir = try ChainReadTests.freshDir("dirty")
        let base = try ChainReadTests.place("iotest-dirtylog-10G-4M.vhdx", in: dir, as: "base.vhdx")
        let child = dir + "/child.avhdx"
        let before = try Shell.sha256(file: base)
        try ChainReadTests.makeChild(child, over: base)
        do {
            let c = try ChainReadTests.openChainWritable(child)
            #expect(c.parent?.logReplay?.inMemory == true)
            try c.write([UInt8](repeating: 0x3c, count: 512), at: 100 << 20)
            try c.close()
        }
        let image = try ChainReadTests.openChain(child)
        // 0xa5 over [0, 18 MiB) only when the parent's log is replayed; 17 MiB is the logged block.
        #expect(try image.read(at: 17 << 20, count: 1 << 20).allSatisfy { $0 == 0xa5 })
        #expect(try image.read(at: 18 << 20, count: 4096).allSatisfy { $0 == 0 })
        #expect(try image.read(at: 100 << 20, count: 512).allSatisfy { $0 == 0x3c })
        #expect(try Shell.sha256(file: base) == before, "the parent with a pending log was written")
    }

    // MARK: - Chain integrity

    @Test("writing a middle layer renews its DataWriteGuid and cuts off its children; a writable open alone does not")
    func writingAParentCutsOffItsChildren() throws {
        let dir = try ChainReadTests.freshDir("cut")
        let base = dir + "/base.vhdx", c1 = dir + "/c1.avhdx", c2 = dir + "/c2.avhdx"
        try ChainReadTests.makeBase(base)
        try ChainReadTests.makeChild(c1, over: base)
        try ChainReadTests.makeChild(c2, over: c1)
        #expect(try ChainReadTests.openChain(c2).chain.count == 3)
        // Opening c1 writable renews its FileWriteGuid only.
        let guid = try ChainReadTests.dataWriteGUID(c1)
        try ChainReadTests.openWritable(c1).close()
        #expect(try ChainReadTests.dataWriteGUID(c1) == guid)
        #expect(try ChainReadTests.openChain(c2).parentLink?.match == .parentLinkage)
        // Changing c1's content does.
        do {
            let w = try ChainReadTests.openChainWritable(c1)
            try w.write([UInt8](repeating: 0x4d, count: 4096), at: 8192)
            try w.close()
        }
        #expect(try ChainReadTests.dataWriteGUID(c1) != guid)
        let error = try #require(ChainReadTests.openError(c2))
        #expect(error.code == .parentMismatch)
        #expect(error.message.contains(c1))
        // Vouched for, c2 shows c1's new bytes where it holds none itself.
        let image = try ChainReadTests.openChain(c2, ParentOptions(ignoreIDMismatch: true))
        #expect(image.parentLink?.match == .ignored)
        #expect(image.parent?.parentLink?.match == .parentLinkage)
        #expect(try image.read(at: 8192, count: 4096).allSatisfy { $0 == 0x4d })
        #expect(try image.read(at: 0, count: 4096).allSatisfy { $0 == 0x5a })
    }

    @Test("while a chain is open, its parents cannot be written: `vhdx write PARENT` is refused as in use")
    func parentsAreLockedWhileAChainIsOpen() throws {
        let dir = try ChainReadTests.freshDir("lock")
        let base = dir + "/base.vhdx", child = dir + "/child.avhdx"
        try ChainReadTests.makeBase(base)
        try ChainReadTests.makeChild(child, over: base)
        let before = try Shell.sha256(file: base)
        var holder: VHDXFile? = try ChainReadTests.openChainWritable(child)
        let r = try ChainReadTests.vhdx("write '\(base)' --offset 0 --pattern 0x11 --length 4096")
        #expect(r.status == 1 && r.stderr.contains("in use"), "\(r.stderr)")
        #expect(try Shell.sha256(file: base) == before)
        // A second writer of the child is refused too; a reader of the parent is not.
        let second = try ChainReadTests.vhdx("write '\(child)' --offset 0 --pattern 0x11 --length 4096")
        #expect(second.status == 1 && second.stderr.contains("in use"), "\(second.stderr)")
        #expect(try ChainReadTests.vhdx("info '\(base)'").status == 0)
        try holder!.close()
        holder = nil
        let after = try ChainReadTests.vhdx("write '\(base)' --offset 0 --pattern 0x11 --length 4096")
        #expect(after.status == 0, "\(after.stderr)")
        // That write cut the child off, as it must.
        #expect(ChainReadTests.openError(child)?.code == .parentMismatch)
    }

    // MARK: - Where parents are found

    @Test("a parent in another folder is found by relative_path (..\\..\\base\\base.vhdx), after the whole tree moves, and through a symlinked folder")
    func relativePathAcrossFolders() throws {
        let root = try ChainReadTests.freshDir("tree")
        for d in ["base", "snap/deeper"] { try FileManager.default.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true) }
        let base = root + "/base/base.vhdx", child = root + "/snap/deeper/child.avhdx"
        try ChainReadTests.makeBase(base)
        try ChainReadTests.makeChild(child, over: base)
        #expect(try ChainReadTests.open(child).layout.parentLocator?["relative_path"] == "..\\..\\base\\base.vhdx")
        #expect(try ChainReadTests.openChain(child).parentLink?.path == base)
        // The tree moves as a whole: the relative path still leads to the parent.
        let moved = root + "-moved"
        try FileManager.default.moveItem(atPath: root, toPath: moved)
        defer { try? FileManager.default.moveItem(atPath: moved, toPath: root) }
        let image = try ChainReadTests.openChain(moved + "/snap/deeper/child.avhdx")
        #expect(image.parentLink?.path == moved + "/base/base.vhdx")
        #expect(try image.read(at: 0, count: 512).allSatisfy { $0 == 0x5a })
        // The child's folder reached through a symlink elsewhere: `..` is the real folder's
        // parent (how the locator was written), not the symlink's.
        let elsewhere = try ChainReadTests.freshDir("elsewhere")
        #expect(symlink(moved + "/snap/deeper", elsewhere + "/link") == 0)
        let viaLink = try ChainReadTests.openChain(elsewhere + "/link/child.avhdx")
        #expect(viaLink.parentLink?.match == .parentLinkage)
        #expect(try viaLink.read(at: 0, count: 512).allSatisfy { $0 == 0x5a })
    }
}
