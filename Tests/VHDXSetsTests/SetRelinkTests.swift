import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXFormat
import VHDXSets
import VHDXTestSupport

/// `relink --accept-modified`: a frozen file changed outside the set changes what every file
/// made from it reads, so every change ID sealed on those files must from then on answer the
/// whole disk (never the old, too small answer); IDs sealed on the modified file itself answer
/// as its own tracking does (reset, for a writer that did not track).
@Suite("VHD Set relink of a modified file", .serialized)
struct SetRelinkTests {
    /// Writes `bytes` into the set path `file` as an outside writer would (qemu, Hyper-V): no
    /// tracker attached, so the file's DataWriteGuid changes behind its tracking's back.
    static func writeOutside(_ lab: SetLab, file: String, _ bytes: [UInt8], at offset: Int) throws {
        let image = try VHDXFile.open(path: try lab.open().absolute(file), writable: true)
        try image.write(bytes, at: UInt64(offset))
        try image.close()
    }

    /// root (s1) ← s2's file ← leaf, an ID sealed on the leaf too; the root written outside.
    static func modifiedRoot() throws -> (lab: SetLab, s1: SnapshotEntry, s2: SnapshotEntry, leafID: ChangeID, patch: [UInt8]) {
        let lab = try SetLab(size: 8 << 20, seed: 3)
        try lab.write(granules: 32, at: 0)
        let s1 = try lab.checkpoint()
        try lab.write(granules: 8, at: 40)
        let s2 = try lab.checkpoint()
        try lab.write(granules: 4, at: 60)
        let leafID = try lab.open(writable: true).seal()
        lab.sealed[leafID] = lab.model
        try lab.write(granules: 2, at: 80)
        // 64 KiB at 1 MiB of the root: under every layer above (none of them holds granule 16).
        let patch = [UInt8](repeating: 0x99, count: 64 << 10)
        try writeOutside(lab, file: s1.path, patch, at: 1 << 20)
        lab.model.replaceSubrange((1 << 20)..<(1 << 20) + patch.count, with: patch)
        return (lab, s1, s2, leafID, patch)
    }

    @Test("after relink --accept-modified, IDs sealed on the leaf and on a snapshot above the modified file answer the change; the file's own ID is refused")
    func acceptModifiedIsTracked() throws {
        let (lab, s1, s2, leafID, _) = try SetRelinkTests.modifiedRoot()
        // Refused until accepted, naming the file.
        #expect { try lab.open().openLeaf() } throws: { ($0 as? VHDXError)?.code == .parentMismatch }
        do {
            let set = try lab.open(writable: true)
            try set.relink(snapshot: s1.id, to: set.absolute(s1.path), acceptModified: true)
        }
        #expect(sameBytes(try lab.content(), lab.model), "content after the relink")
        #expect(try lab.open().check().filter { $0.severity == .corruption }.isEmpty)

        let granule = UInt64(1 << 20) / SetLab.granule
        for (name, id) in [("leaf", leafID), ("snapshot above", s2.changeID!)] {
            let a = try lab.open().changes(since: id)
            #expect(SetLab.granules(a.ranges).contains(granule), "\(name): \(a.ranges) misses the modified granule")
        }
        // The modified file's own ID: its tracking saw an outside writer.
        #expect { try lab.open().changes(since: s1.changeID!) } throws: { ($0 as? ChangeTrackingError)?.reason == .reset }
        // Every sealed ID either answers at least the truth or is refused; the leaf's and s2's answer.
        try lab.verifyChanges(mustAnswer: [leafID, s2.changeID!], "after relink", exactMeansEqual: false)

        // Later checkpoints keep answering them (the whole-disk change is part of a sealed epoch now).
        try lab.write(granules: 1, at: 100)
        _ = try lab.checkpoint()
        try lab.write(granules: 1, at: 101)
        try lab.verifyChanges(mustAnswer: [leafID, s2.changeID!], "after a later checkpoint", exactMeansEqual: false)
    }

    @Test("a crash at every flush point of relink --accept-modified: the next writable open completes it, and no ID answers too little")
    func crashDuringRelink() throws {
        let (base, s1, s2, leafID, _) = try SetRelinkTests.modifiedRoot()
        func run(_ lab: SetLab) throws {
            let set = try lab.open(writable: true)
            try set.relink(snapshot: s1.id, to: set.absolute(s1.path), acceptModified: true)
        }
        let counter = CrashPlan(crashAtFlush: .max)
        let clean = try SetLab(copying: base, name: "relinkclean")
        try counter.run(in: clean.dir) { try run(clean) }
        let flushes = counter.flushes
        #expect(flushes >= 3, "\(flushes) flush points")
        let sweep = CrashSweep("relink's flush points")
        for f in 1...max(1, flushes) {
            for lose in [false, true] {
                let context = "crash at flush \(f)/\(flushes)\(lose ? ", unflushed writes lost" : "")"
                let lab = try SetLab(copying: base, name: "relinkcrash")
                let plan = CrashPlan(crashAtFlush: f, loseUnflushed: lose)
                #expect(throws: (any Error).self, "\(context): no crash") { try plan.run(in: lab.dir) { try run(lab) } }
                sweep.visited(context, crashed: plan.crashed)
                // Completed by the next writable open, or (crash before it was recorded) run again.
                #expect(try lab.open(writable: true).record.pending == nil, "\(context): recovery left work")
                if (try? lab.open().openLeaf()) == nil { try run(lab) }
                #expect(sameBytes(try lab.content(), lab.model), "\(context): content")
                try SetCrashTests.expectClean(lab, context)
                try lab.verifyChanges(mustAnswer: [leafID, s2.changeID!], context, exactMeansEqual: false)
                sweep.checkedResult()
            }
        }
        #expect(sweep.problems.isEmpty, "\(sweep.problems)")
    }
}
