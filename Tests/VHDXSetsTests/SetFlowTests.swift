import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXFormat
import VHDXSets
import VHDXTestSupport

/// The scripted flow the issue names: create, write, checkpoint, write, checkpoint, write, list,
/// apply, write, checkpoint, write, delete with and without reference, optimize. After every
/// step: `vhdx convert SET.vhds -` equals the byte model, `vhdx check SET.vhds` is clean, the
/// leaf's chain reads the same in libvhdi and 7-Zip, and every sealed change ID is answered
/// with at least what changed since (exactly, when the answer says so) — also after its
/// checkpoint was deleted with --keep-reference.
@Suite("VHD Set flow", .serialized)
struct SetFlowTests {
    @Test("create → checkpoints → apply → deletes → optimize, checked after every step")
    func scriptedFlow() throws {
        try Shell.require("7zz"); try Shell.require("/usr/bin/python3")
        let lab = try SetLab()
        let vhdx = try vhdxBinary()
        func verify(_ step: String, mustAnswer: Set<ChangeID> = []) throws {
            // Content through the CLI (the set as an image argument) and the library.
            let sha = try Shell.run("'\(vhdx)' convert '\(lab.setPath)' - | \(Shell.sha256Command) -").stdout.prefix(64)
            let want = sha256Hex(lab.model)
            #expect(sha == want, "\(step): vhdx convert SET - differs from the model")
            #expect(sameBytes(try lab.content(), lab.model), "\(step): library read differs")
            let check = try Shell.run("'\(vhdx)' check '\(lab.setPath)'", allowFailure: true)
            #expect(check.status == 0, "\(step): check: \(check.stdout)\(check.stderr)")
            try oracles(lab, want: want, step)
            try lab.verifyChanges(mustAnswer: mustAnswer, step)
        }

        _ = try lab.write(granules: 16, at: 0)
        try verify("create+write")
        let s1 = try lab.checkpoint()
        _ = try lab.write(granules: 4, at: 40)
        try verify("checkpoint 1 + write", mustAnswer: [s1.changeID!])
        let s2 = try lab.checkpoint()
        _ = try lab.write(granules: 2, at: 8)
        try verify("checkpoint 2 + write", mustAnswer: [s1.changeID!, s2.changeID!])

        let list = try Shell.run("'\(vhdx)' set list '\(lab.setPath)' --json")
        let json = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as! [String: Any]
        let snaps = json["snapshots"] as! [[String: Any]]
        #expect(snaps.map { $0["id"] as! String } == [s1.id.description, s2.id.description])
        #expect(snaps.map { $0["change-id"] as! String } == [s1.changeID!.description, s2.changeID!.description])
        #expect(snaps.allSatisfy { $0["ancestor-of-leaf"] as! Bool })

        try lab.apply(s1)
        try verify("apply 1 (old leaf kept)", mustAnswer: [s1.changeID!])
        #expect(try lab.open().record.snapshots.count == 3)
        _ = try lab.write(granules: 3, at: 100)
        let s3 = try lab.checkpoint()
        _ = try lab.write(granules: 5, at: 120)
        try verify("write, checkpoint 3, write", mustAnswer: [s1.changeID!, s3.changeID!])

        // The checkpoint on the leaf's line deleted, its reference kept: the leaf's file is
        // merged into it and its ID still answers exactly what was written after it.
        let r3 = try lab.open(writable: true).delete(s3.id, keepReference: true)
        guard case .merged = r3.outcome else { Issue.record("delete 3: \(r3.outcome)"); return }
        try verify("delete 3 --keep-reference", mustAnswer: [s1.changeID!, s3.changeID!])
        let a3 = try lab.open().changes(since: s3.changeID!)
        #expect(a3.exact && SetLab.granules(a3.ranges) == Set(120..<125), "reference point answers \(a3.ranges)")
        #expect(try lab.open().record.snapshot(s3.id)?.isReferenceOnly == true)

        // The kept leaf (a branch end) deleted: its file goes.
        let kept = try #require(try lab.open().record.snapshots.first { $0.kind == .keptLeaf })
        let keptFile = try lab.open().absolute(kept.path)
        let rk = try lab.open(writable: true).delete(kept.id)
        guard case .removed = rk.outcome else { Issue.record("delete kept: \(rk.outcome)"); return }
        #expect(!FileManager.default.fileExists(atPath: keptFile))
        try verify("delete kept leaf", mustAnswer: [s1.changeID!, s3.changeID!])

        // Checkpoint 2 (other branch) with its reference: no dependant left, file deleted.
        try lab.open(writable: true).delete(s2.id, keepReference: true)
        try verify("delete 2 --keep-reference", mustAnswer: [s1.changeID!, s3.changeID!])

        // Checkpoint 1, the root, without reference: the leaf is merged into the root's file.
        // Checkpoint 3's ID was sealed in the leaf's file: answered through its alias (larger).
        try lab.open(writable: true).delete(s1.id)
        try verify("delete 1", mustAnswer: [s3.changeID!])
        let a3b = try lab.open().changes(since: s3.changeID!)
        #expect(!a3b.exact, "an aliased answer says it is not exact")

        let before = try lab.open().record
        let opt = try lab.open(writable: true).optimize()
        #expect(opt.droppedEntries.contains(s2.id), "the other branch's dead reference point is dropped")
        #expect(try lab.open().record.snapshot(s3.id) != nil, "a reference point the leaf still answers stays")
        try verify("optimize", mustAnswer: [s3.changeID!])
        #expect(try lab.open().record.snapshots.count < before.snapshots.count)
        // One backing file is left: the root, now the leaf.
        #expect(try lab.backingFiles().count == 1)
        let files = try FileManager.default.contentsOfDirectory(atPath: lab.dir).filter { $0.hasSuffix(".avhdx") }
        #expect(files.count == 1, "no file left behind: \(files)")
    }

    /// libvhdi (the chain assembled with set_parent) and 7-Zip (resolving the locators itself)
    /// read the active leaf's chain as the model. libvhdi reads a differencing layer whose
    /// chunk has no sector bitmap block (an empty child, as a checkpoint makes, and as Hyper-V's
    /// own fresh .avhdx files are) with the file's first bytes as its bitmap, so empty layers —
    /// which read exactly as their parent — are left out of its chain.
    func oracles(_ lab: SetLab, want: String, _ step: String) throws {
        let s = try lab.open()
        let top = try s.openLeaf()
        let sevenZipTop = top.path
        var chain: [String] = []
        for layer in top.chain where try layer.diskType != .differencing || layer.allocationSummary().allocatedBytes > 0 { chain.append(layer.path) }
        let lib = try libvhdiSHA256(chain)
        #expect(lib.stdout.hasPrefix(want), "\(step): libvhdi reads the chain differently: \(lib.stdout)\(lib.stderr)")
        let seven = try Shell.run("set -o pipefail; 7zz x -tvhdx -so '\(sevenZipTop)' 2>/dev/null | \(Shell.sha256Command) -", allowFailure: true)
        #expect(seven.stdout.hasPrefix(want), "\(step): 7-Zip reads the chain differently: \(seven.stdout)")
    }
}
