import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXFormat
import VHDXSets
import VHDXTestSupport

/// A simulated power loss (`CrashPlan`) at every flush point of each set operation — set file
/// and backing files together — with the files' unflushed writes kept (a killed process) or
/// lost (the page cache gone). After each: the set opens read-only and reads as before or after
/// the operation; a writable open completes it (rollback or roll-forward); `check` finds no
/// corruption; running the operation again (when it was rolled back) gives the model's result;
/// and every change ID the lineage holds still covers what changed since it.
@Suite("VHD Set crash consistency", .serialized)
struct SetCrashTests {
    /// One operation on a prepared lab: what it does to the model, and how to run it.
    struct Operation: CustomStringConvertible, Sendable {
        var description: String
        /// Builds the state the operation starts from.
        var prepare: @Sendable () throws -> SetLab
        /// Runs it on a lab's set (through the library, as the CLI does).
        var run: @Sendable (SetLab) throws -> Void
        /// Applies it to the lab's model (content, sealed IDs) after it completed.
        var model: @Sendable (SetLab) throws -> Void = { _ in }
        /// Whether, after recovery, the operation is complete (else it was rolled back and is
        /// run again). Deletes roll forward, so they are always complete.
        var isDone: @Sendable (_ lab: SetLab, _ baseSnapshots: Int, _ after: [UInt8]) throws -> Bool = { _, _, _ in true }
        /// The IDs whose sealed content is an ancestor state of the content once the operation
        /// completed (from the lab before it): they must all still be answered.
        var lineageAfter: @Sendable (SetLab) throws -> [ChangeID] = { $0.lineage }
    }

    /// Two checkpoints with writes between them; the leaf holds writes too.
    static func twoCheckpoints() throws -> SetLab {
        let lab = try SetLab(size: 8 << 20, seed: 7)
        try lab.write(granules: 8, at: 0)
        _ = try lab.checkpoint()
        try lab.write(granules: 3, at: 20)
        _ = try lab.checkpoint()
        try lab.write(granules: 2, at: 40)
        return lab
    }

    static func snapshot(_ lab: SetLab, _ i: Int) throws -> SnapshotEntry { try lab.open().record.snapshots[i] }

    static let operations: [Operation] = [
        Operation(description: "checkpoint", prepare: twoCheckpoints,
                  run: { lab in _ = try lab.open(writable: true).checkpoint() },
                  isDone: { lab, n, _ in lab.snapshotCount == n + 1 }),
        Operation(description: "apply (keep the leaf)", prepare: twoCheckpoints,
                  run: { lab in let id = try snapshot(lab, 0).id; _ = try lab.open(writable: true).apply(id) },
                  model: { lab in lab.model = lab.sealed[try snapshot(lab, 0).changeID!]! },
                  isDone: { lab, _, after in sameBytes(try lab.content(), after) },
                  lineageAfter: { lab in lab.lineageAt[try snapshot(lab, 0).id]! }),
        Operation(description: "apply --discard", prepare: twoCheckpoints,
                  run: { lab in let id = try snapshot(lab, 0).id; _ = try lab.open(writable: true).apply(id, discard: true) },
                  model: { lab in lab.model = lab.sealed[try snapshot(lab, 0).changeID!]! },
                  isDone: { lab, _, after in sameBytes(try lab.content(), after) },
                  lineageAfter: { lab in lab.lineageAt[try snapshot(lab, 0).id]! }),
        Operation(description: "delete the leaf's parent --keep-reference (leaf merged)", prepare: twoCheckpoints,
                  run: { lab in let id = try snapshot(lab, 1).id; _ = try lab.open(writable: true).delete(id, keepReference: true) }),
        Operation(description: "delete the root (a snapshot merged, the leaf relinked)", prepare: twoCheckpoints,
                  run: { lab in let id = try snapshot(lab, 0).id; _ = try lab.open(writable: true).delete(id) }),
        Operation(description: "optimize after a delete of a branch point", prepare: {
                      let lab = try twoCheckpoints()
                      // apply the root: the root file has two dependants; deleting it retains it;
                      // discarding the new leaf's branch… here: delete the other branch, then
                      // optimize folds the retained root into its one remaining dependant.
                      let root = try snapshot(lab, 0)
                      try lab.apply(root)
                      try lab.write(granules: 2, at: 60)
                      _ = try lab.open(writable: true).delete(root.id, keepReference: true)
                      let record = try lab.open().record
                      for e in record.snapshots where e.hasFile && !e.isRetained && e.parent == root.id {
                          // the old branch: remove it and what was made from it
                          let children = record.snapshots.filter { $0.parent == e.id && $0.hasFile }
                          for c in children { _ = try lab.open(writable: true).delete(c.id) }
                          _ = try lab.open(writable: true).delete(e.id)
                      }
                      return lab
                  },
                  run: { lab in _ = try lab.open(writable: true).optimize() },
                  isDone: { _, _, _ in false }),
    ]

    @Test("a crash at every flush point of each set operation leaves a set that opens, reads right and completes", arguments: operations)
    func crashEverywhere(_ op: Operation) throws {
        let base = try op.prepare()
        let before = base.model
        // Clean run: the flush count and the result.
        let clean = try SetLab(copying: base)
        let counter = CrashPlan(crashAtFlush: .max)
        try counter.run(in: clean.dir) { try op.run(clean) }
        try op.model(clean)
        let after = clean.model
        #expect(sameBytes(try clean.content(), after), "\(op): the clean run's content")
        let flushes = counter.flushes
        let lineageAfter = try op.lineageAfter(base)
        #expect(flushes >= 3, "\(op) has \(flushes) flush points")
        print("\(op): \(flushes) flush points")

        let sweep = CrashSweep("\(op)'s flush points")
        for f in 1...max(1, flushes) {
            for lose in [false, true] {
                let context = "\(op), crash at flush \(f)/\(flushes)\(lose ? ", unflushed writes lost" : "")"
                let lab = try SetLab(copying: base, name: "crash")
                let plan = CrashPlan(crashAtFlush: f, loseUnflushed: lose)
                #expect(throws: (any Error).self, "\(context): no crash") { try plan.run(in: lab.dir) { try op.run(lab) } }
                sweep.visited(context, crashed: plan.crashed)

                // Read-only: opens and reads the content before or after.
                let ro = try lab.content()
                let wasBefore = sameBytes(ro, before), wasAfter = sameBytes(ro, after)
                if wasAfter { sweep.checkedResult() }
                #expect(wasBefore || wasAfter, "\(context): read-only content is neither before nor after")

                // Writable open: recovery. Then the content is still one of the two.
                do {
                    let recovered = try lab.open(writable: true)
                    #expect(recovered.record.pending == nil && recovered.record.unlinkQueue.isEmpty, "\(context): recovery left work")
                }
                let rc = try lab.content()
                #expect(sameBytes(rc, before) || sameBytes(rc, after), "\(context): content after recovery")
                try SetCrashTests.expectClean(lab, context)

                // Change IDs sealed so far still cover what changed since them, and every one
                // on the content's line is still answered (a crash grows answers, never resets).
                lab.model = rc
                let line = sameBytes(rc, after) && !sameBytes(before, after) ? lineageAfter : base.lineage
                #expect(!line.isEmpty)
                try lab.verifyChanges(mustAnswer: Set(line), context)

                // Re-running the operation (unless recovery completed it) gives the clean result.
                if try !op.isDone(lab, base.snapshotCount, after) {
                    sweep.checkedResult()
                    try op.run(lab)
                    #expect(sameBytes(try lab.content(), after), "\(context): the re-run's content")
                    try SetCrashTests.expectClean(lab, context + ", re-run")
                }
            }
        }
        #expect(sweep.problems.isEmpty, "\(sweep.problems)")
    }

    /// Once a set operation that deletes files returns (a delete merging the leaf into its
    /// parent, an apply discarding the leaf), a power loss leaves the set as it returned it: the
    /// deleted files stay deleted. The crash model (`CrashPlan` with lost unflushed state)
    /// undoes every deletion whose directory was not flushed afterwards, so without the
    /// directory fsync after the unlinks (`VHDSet.removeFile`) a file the set no longer names
    /// comes back, taking its space for good.
    @Test("once a delete or a discarding apply returns, the files it deleted stay deleted after a power loss",
          arguments: ["delete --keep-reference", "apply --discard"])
    func deletionsAreDurableOnReturn(_ op: String) throws {
        let lab = try SetCrashTests.twoCheckpoints()
        let plan = CrashPlan(crashAtFlush: .max, loseUnflushed: true)
        let filesBefore = Set(try FileManager.default.contentsOfDirectory(atPath: lab.dir).filter { $0.hasSuffix(".avhdx") })
        let first = try SetCrashTests.snapshot(lab, 0), second = try SetCrashTests.snapshot(lab, 1)
        try plan.run(in: lab.dir) {
            if op == "apply --discard" {
                try lab.apply(first, discard: true)
            } else {
                _ = try lab.open(writable: true).delete(second.id, keepReference: true)
            }
        }
        let expected = lab.model
        let filesAfter = Set(try FileManager.default.contentsOfDirectory(atPath: lab.dir).filter { $0.hasSuffix(".avhdx") })
        #expect(!filesBefore.subtracting(filesAfter).isEmpty, "\(op) deleted no file: the test proves nothing")
        plan.powerLoss()
        #expect(sameBytes(try lab.content(), expected), "\(op): the content changed at the power loss")
        let present = Set(try FileManager.default.contentsOfDirectory(atPath: lab.dir).filter { $0.hasSuffix(".avhdx") })
        #expect(present == filesAfter, "\(op): after a power loss the folder holds \(present.sorted()), not \(filesAfter.sorted()): a deletion was not made durable (directory fsync)")
        try SetCrashTests.expectClean(lab, "\(op), power loss after it returned")
    }

    /// No corruption in the set (copies, links, frozen files) nor in the leaf's chain; leaked
    /// space is allowed (a crash can leave an unreferenced block).
    static func expectClean(_ lab: SetLab, _ context: String) throws {
        let s = try lab.open()
        let findings = try s.check().filter { $0.severity == .corruption }
        #expect(findings.isEmpty, "\(context): set findings \(findings)")
        let report = try Checker.checkChain(path: s.leafPath, parents: .default)
        let bad = report.findings.filter { $0.kind == .corruption }
        #expect(bad.isEmpty, "\(context): chain findings \(bad)")
        // No file the set names is missing; nothing but the set's files and temporaries remain.
        let named = Set(try lab.backingFiles().map { ($0 as NSString).lastPathComponent })
        let present = Set(try FileManager.default.contentsOfDirectory(atPath: lab.dir).filter { $0.hasSuffix(".avhdx") })
        #expect(named.isSubset(of: present), "\(context): missing \(named.subtracting(present))")
        #expect(present.subtracting(named).isEmpty, "\(context): files left behind \(present.subtracting(named))")
    }
}

extension SetLab {
    var snapshotCount: Int { (try? open().record.snapshots.count) ?? -1 }
}
