import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

/// `reparent`, `info --chain` and the chain view of `map`, end to end through the binary.
@Suite("reparent, info --chain, map through a chain", .serialized)
struct ReparentTests {
    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    /// A directory holding base.vhdx (16 MiB of 0x5a at 0) and child.avhdx over it with 0x11
    /// over [1 MiB + 512, 1 MiB + 4608).
    func makeChain() throws -> String {
        let dir = Fixtures.tempPath("chain")
        try Shell.run("mkdir -p '\(dir)'")
        #expect(try vhdx("create '\(dir)/base.vhdx' 64M --block-size 8M").status == 0)
        #expect(try vhdx("write '\(dir)/base.vhdx' --offset 0 --pattern 0x5a --length 16M").status == 0)
        #expect(try vhdx("create --parent '\(dir)/base.vhdx' '\(dir)/child.avhdx'").status == 0)
        #expect(try vhdx("write '\(dir)/child.avhdx' --offset 1049088 --pattern 0x11 --length 4096").status == 0)
        return dir
    }

    func contentHash(_ path: String, _ extra: String = "") throws -> String {
        let r = try Shell.run("'\(try vhdxBinary())' convert \(extra) '\(path)' - | sha256sum")
        return String(r.stdout.prefix(64))
    }

    @Test func reparentToAMovedParentKeepsContent() throws {
        let dir = try makeChain()
        defer { _ = try? Shell.run("rm -rf '\(dir)'") }
        // The chain's content from its own model (makeChain), not from a read of the chain.
        var model = [UInt8](repeating: 0, count: 64 << 20)
        model.replaceSubrange(0..<(16 << 20), with: repeatElement(0x5a, count: 16 << 20))
        model.replaceSubrange(1049088..<1049088 + 4096, with: repeatElement(0x11, count: 4096))
        let before = sha256Hex(model)
        #expect(try contentHash("\(dir)/child.avhdx") == before)
        try Shell.run("mkdir -p '\(dir)/moved' && mv '\(dir)/base.vhdx' '\(dir)/moved/renamed.vhdx'")
        let lost = try vhdx("convert '\(dir)/child.avhdx' -")
        #expect(lost.status == 1)
        #expect(lost.stderr.contains("\(dir)/base.vhdx: not found"))
        let parentHash = try Shell.sha256(file: "\(dir)/moved/renamed.vhdx")
        let r = try vhdx("reparent '\(dir)/child.avhdx' --parent '\(dir)/moved/renamed.vhdx' --json")
        #expect(r.status == 0, "\(r.stderr)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(j["matched"] as? String == "parent_linkage")
        let locator = try #require(j["parent-locator"] as? [String: String])
        #expect(locator["relative_path"] == ".\\moved\\renamed.vhdx")
        #expect(try contentHash("\(dir)/child.avhdx") == before)
        // The oracle reads the reparented chain as the model too.
        let lib = try libvhdiSHA256(["\(dir)/child.avhdx", "\(dir)/moved/renamed.vhdx"])
        #expect(lib.stdout.hasPrefix(before), "libvhdi: \(lib.stdout)\(lib.stderr)")
        // The parent was only read; the child is clean for other tools.
        #expect(try Shell.sha256(file: "\(dir)/moved/renamed.vhdx") == parentHash)
        #expect(try vhdx("check '\(dir)/child.avhdx'").status == 0)
        let child = try VHDXFile.openFile(path: "\(dir)/child.avhdx")
        #expect(child.header.logGUID.isZero)
    }

    @Test func reparentRefusesAWrongDiskUnlessTold() throws {
        let dir = try makeChain()
        defer { _ = try? Shell.run("rm -rf '\(dir)'") }
        #expect(try vhdx("create '\(dir)/other.vhdx' 64M").status == 0)
        let childHash = try Shell.sha256(file: "\(dir)/child.avhdx")
        let r = try vhdx("reparent '\(dir)/child.avhdx' --parent '\(dir)/other.vhdx'")
        #expect(r.status == 1)
        #expect(r.stderr.contains("parent mismatch"))
        // A refused reparent writes nothing at all.
        #expect(try Shell.sha256(file: "\(dir)/child.avhdx") == childHash)
        let forced = try vhdx("reparent '\(dir)/child.avhdx' --parent '\(dir)/other.vhdx' --ignore-id-mismatch --json")
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(forced.stdout.contains("\"ignored\""))
        // Now the child links to the other disk by its DataWriteGuid: it opens without the flag.
        let chain = try VHDXFile.openChain(path: "\(dir)/child.avhdx")
        #expect(chain.parentLink?.match == .parentLinkage)
        #expect(chain.parentLink?.path.hasSuffix("other.vhdx") == true)
        // The child's own sectors survive; the rest now comes from the (empty) other disk.
        #expect(try chain.read(at: 1049088, count: 4096) == [UInt8](repeating: 0x11, count: 4096))
        #expect(try chain.read(at: 0, count: 512) == [UInt8](repeating: 0, count: 512))
    }

    @Test func reparentRefusesCyclesSelfAndLargerParents() throws {
        let dir = try makeChain()
        defer { _ = try? Shell.run("rm -rf '\(dir)'") }
        #expect(try vhdx("create --parent '\(dir)/child.avhdx' '\(dir)/grandchild.avhdx'").status == 0)
        let hashes = try ["child.avhdx", "grandchild.avhdx", "base.vhdx"].map { try Shell.sha256(file: "\(dir)/\($0)") }
        let cycle = try vhdx("reparent '\(dir)/child.avhdx' --parent '\(dir)/grandchild.avhdx' --ignore-id-mismatch")
        #expect(cycle.status == 1)
        #expect(cycle.stderr.contains("cycle"))
        let selfParent = try vhdx("reparent '\(dir)/child.avhdx' --parent '\(dir)/child.avhdx'")
        #expect(selfParent.status == 1)
        #expect(try vhdx("create '\(dir)/big.vhdx' 128M").status == 0)
        let big = try vhdx("reparent '\(dir)/child.avhdx' --parent '\(dir)/big.vhdx' --ignore-id-mismatch")
        #expect(big.status == 1)
        #expect(big.stderr.contains("larger"))
        #expect(try vhdx("reparent '\(dir)/base.vhdx' --parent '\(dir)/child.avhdx'").status == 1)
        // The chain is still intact after every refusal, and no file changed.
        #expect(try ["child.avhdx", "grandchild.avhdx", "base.vhdx"].map { try Shell.sha256(file: "\(dir)/\($0)") } == hashes)
        #expect(try VHDXFile.openChain(path: "\(dir)/grandchild.avhdx").chain.count == 3)
    }

    @Test func infoChainListsEveryLayer() throws {
        let dir = try makeChain()
        defer { _ = try? Shell.run("rm -rf '\(dir)'") }
        #expect(try vhdx("create --parent '\(dir)/child.avhdx' '\(dir)/top.avhdx' 96M").status == 0)
        let r = try vhdx("info --chain --json '\(dir)/top.avhdx'")
        #expect(r.status == 0, "\(r.stderr)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let chain = try #require(j["chain"] as? [[String: Any]])
        #expect(chain.map { $0["path"] as? String } == ["\(dir)/top.avhdx", "\(dir)/child.avhdx", "\(dir)/base.vhdx"])
        #expect(chain.map { $0["type"] as? String } == ["differencing", "differencing", "dynamic"])
        #expect((chain[0]["virtual-size"] as? NSNumber)?.uint64Value == 96 << 20)
        #expect(chain[0]["linked-by"] as? String == "parent_linkage")
        #expect(chain[2]["parent"] == nil)
        let base = try VHDXFile.openFile(path: "\(dir)/base.vhdx")
        #expect(chain[2]["data-write-guid"] as? String == base.header.dataWriteGUID.description)
        // Without --chain, info needs no parent.
        try Shell.run("mv '\(dir)/base.vhdx' '\(dir)/gone.vhdx'")
        #expect(try vhdx("info '\(dir)/top.avhdx'").status == 0)
        #expect(try vhdx("info --chain '\(dir)/top.avhdx'").status == 1)
        #expect(try vhdx("info --chain --search-dir '\(dir)' --parent '\(dir)/child.avhdx' '\(dir)/top.avhdx'").status == 1)
    }

    @Test func mapNamesTheLayerOfEachExtent() throws {
        let dir = try makeChain()
        defer { _ = try? Shell.run("rm -rf '\(dir)'") }
        #expect(try vhdx("create --parent '\(dir)/child.avhdx' '\(dir)/top.avhdx' 96M").status == 0)
        #expect(try vhdx("write '\(dir)/top.avhdx' --offset 2M --pattern 0x22 --length 2M").status == 0)
        let r = try vhdx("map --json '\(dir)/top.avhdx' --length 16M")
        #expect(r.status == 0, "\(r.stderr)")
        let extents = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        func row(_ e: [String: Any]) -> [UInt64] {
            ["offset", "length", "layer"].map { (e[$0] as? NSNumber)?.uint64Value ?? .max }
        }
        let mb: UInt64 = 1 << 20
        let expected: [[UInt64]] = [
            [0, 1049088, 2],                        // base's 0x5a
            [1049088, 4096, 1],                     // the child's sectors
            [1053184, 2 * mb - 1053184, 2],         // base again, up to the top's full block
            [2 * mb, 2 * mb, 0],                    // the top's full block
            [4 * mb, 12 * mb, 2],                   // base to the end of the range
        ]
        #expect(extents.map(row) == expected)
        #expect(extents.allSatisfy { $0["state"] as? String == "data" })
        #expect(extents[1]["file"] as? String == "\(dir)/child.avhdx")
        // Beyond the base's data and past the base's end, nothing holds bytes.
        let tail = try vhdx("map --json '\(dir)/top.avhdx' --offset 64M")
        let t = try #require(try JSONSerialization.jsonObject(with: Data(tail.stdout.utf8)) as? [[String: Any]])
        #expect(t.count == 1 && t[0]["state"] as? String == "not-present" && (t[0]["layer"] as? NSNumber)?.intValue == 0)
        // --own: the top's own block states only, no parents opened.
        try Shell.run("mv '\(dir)/base.vhdx' '\(dir)/gone.vhdx'")
        let own = try vhdx("map --own --json '\(dir)/top.avhdx' --length 6M")
        #expect(own.status == 0)
        #expect(own.stdout.contains("\"not-present\"") && !own.stdout.contains("\"layer\""))
        #expect(try vhdx("map '\(dir)/top.avhdx'").status == 1)
    }

    @Test func checkChainChecksEveryLayerAndLink() throws {
        let dir = try makeChain()
        defer { _ = try? Shell.run("rm -rf '\(dir)'") }
        #expect(try vhdx("create --parent '\(dir)/child.avhdx' '\(dir)/top.avhdx'").status == 0)
        #expect(try vhdx("check --chain '\(dir)/top.avhdx'").status == 0)
        // A damaged parent shows up, named by its file.
        try Shell.run("printf 'XXXX' | dd of='\(dir)/base.vhdx' bs=1 seek=$((192*1024)) conv=notrunc status=none")
        let damaged = try vhdx("check --chain --json '\(dir)/top.avhdx'")
        #expect(damaged.status == 2, "\(damaged.stdout)")
        #expect(damaged.stdout.contains("\(dir)/base.vhdx: region table"))
        // Plain check of the top alone does not look at parents.
        #expect(try vhdx("check '\(dir)/top.avhdx'").status == 0)
        // A parent that changed after the child was made (new DataWriteGuid) breaks the link.
        #expect(try vhdx("check --repair '\(dir)/base.vhdx'").status == 0)
        #expect(try vhdx("write '\(dir)/base.vhdx' --offset 0 --pattern 1 --length 512").status == 0)
        let broken = try vhdx("check --chain '\(dir)/top.avhdx'")
        #expect(broken.status == 2)
        #expect(broken.stdout.contains("parent chain"))
        // A missing parent: the check cannot run.
        try Shell.run("rm '\(dir)/base.vhdx'")
        let missing = try vhdx("check --chain '\(dir)/top.avhdx'")
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("base.vhdx: not found"))
    }
}
