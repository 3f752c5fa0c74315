import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXFormat
import VHDXSets
import VHDXTestSupport

/// An I/O error is not damage, for sets: EIO, ENOSPC and EACCES injected through the engine's
/// file-system seam (`IOFaultPlan`) at every read and write of the set file and its backing
/// files. Reading a set (open, list, check) fails with an I/O error — never "truncated", "not a
/// set" or a damaged copy — and changes nothing; an operation that fails leaves a set that
/// reads as before or after it, which the next writing command completes, with every change ID
/// still answered. The next run without the fault answers as before.
@Suite("VHD Set I/O errors", .serialized)
struct SetIOFaultTests {
    /// What `set list` shows: the record (leaf, snapshots, pending work) and each problem.
    static func listing(_ lab: SetLab, writable: Bool = false) throws -> String {
        let s = try lab.open(writable: writable)
        let problems = try s.problems()
        let findings = try s.check()
        return "\(s.record)|\(problems.mapValues(\.message))|\(findings.map(\.description))"
    }

    static func bytes(_ path: String) -> Data { FileManager.default.contents(atPath: path) ?? Data() }

    @Test("an injected EIO/ENOSPC/EACCES at every read of opening, listing and checking a set: an I/O error, nothing changed, the next run lists the same",
          arguments: [nil, ".vhds"])
    func readingASet(file: String?) throws {
        let lab = try SetCrashTests.twoCheckpoints()
        for writable in [false, true] {
            let baseline = try Self.listing(lab, writable: writable)
            let before = Self.bytes(lab.setPath)
            let counter = IOFaultPlan(calls: [.read], file: file)
            _ = try counter.run(in: lab.dir) { try Self.listing(lab, writable: writable) }
            let sweep = IOFaultSweep("reading a set (writable: \(writable), only \(file ?? "any file"))")
            for p in IOFaultSweep.points(counter.kinds, limit: 14) {
                let plan = IOFaultPlan(failAt: p.index, code: p.code, calls: [.read], file: file)
                let context = "\(plan.failAt!) with \(IOFaultPlan.name(p.code))"
                do {
                    // A read the engine retried (another candidate path of a parent) may let
                    // the listing succeed: then it is the same listing.
                    let listed = try plan.run(in: lab.dir) { try Self.listing(lab, writable: writable) }
                    #expect(listed == baseline, "\(context): listed differently although \(plan.fired ?? "no call") failed")
                } catch {
                    sweep.failedWithIOError()
                    #expect(IOFaultSweep.isIOError(error, code: p.code), "\(plan.fired ?? context) became \(error), not an I/O error")
                }
                sweep.visited(plan)
                #expect(Self.bytes(lab.setPath) == before, "\(plan.fired ?? context): the set file changed")
                #expect(try Self.listing(lab) == baseline, "\(plan.fired ?? context): the next run lists differently")
            }
            print(sweep.summary(calls: counter.count))
            #expect(sweep.problems.isEmpty, "\(sweep.problems)")
        }
    }

    @Test("a set under another name that cannot be read is not 'not a set': recognising it fails with the I/O error, and the next run recognises it")
    func recognisingASet() throws {
        let lab = try SetLab(size: 8 << 20)
        let renamed = lab.dir + "/disk.set"
        try FileManager.default.copyItem(atPath: lab.setPath, toPath: renamed)
        let plan = IOFaultPlan(failAt: 0, code: EIO, calls: [.read], file: "disk.set")
        let error = #expect(throws: VHDXError.self) { try plan.run(in: lab.dir) { try VHDSet.looksLikeSet(renamed) } }
        #expect(error?.code == .io, "\(String(describing: error))")
        #expect(plan.fired != nil, "the fault never fired: the test proves nothing")
        #expect(try VHDSet.looksLikeSet(renamed))
    }

    @Test("an injected EIO/ENOSPC/EACCES at every read, write, flush, rename and unlink of each set operation: an I/O error; the set reads as before or after, completes, and answers every change ID",
          arguments: SetCrashTests.operations)
    func operationFaults(_ op: SetCrashTests.Operation) throws {
        let base = try op.prepare()
        let before = base.model
        let clean = try SetLab(copying: base)
        try op.run(clean)
        try op.model(clean)
        let after = clean.model
        let lineageAfter = try op.lineageAfter(base)
        // Sampled calls on every file, then every call on the set file itself.
        for file in [nil, ".vhds"] {
            let counter = IOFaultPlan(file: file)
            do {
                let lab = try SetLab(copying: base, name: "iocount")
                try counter.run(in: lab.dir) { try op.run(lab) }
            }
            let sweep = IOFaultSweep("\(op) (\(file ?? "any file"))")
            for p in IOFaultSweep.points(counter.kinds, limit: file == nil ? 6 : 8) {
                let lab = try SetLab(copying: base, name: "iofault")
                let plan = IOFaultPlan(failAt: p.index, code: p.code, file: file)
                do {
                    try plan.run(in: lab.dir) { try op.run(lab) }
                    Issue.record("\(op): succeeded although \(plan.fired ?? "no call") failed with \(IOFaultPlan.name(p.code))")
                } catch {
                    sweep.failedWithIOError()
                    #expect(IOFaultSweep.isIOError(error, code: p.code), "\(op): \(plan.fired ?? "?") with \(IOFaultPlan.name(p.code)) became \(error), not an I/O error")
                }
                sweep.visited(plan)
                let context = "\(op), \(plan.fired ?? "?") failed with \(IOFaultPlan.name(p.code))"

                let ro = try lab.content()
                #expect(sameBytes(ro, before) || sameBytes(ro, after), "\(context): content is neither before nor after")
                do {
                    let recovered = try lab.open(writable: true)
                    #expect(recovered.record.pending == nil && recovered.record.unlinkQueue.isEmpty, "\(context): recovery left work")
                }
                let rc = try lab.content()
                #expect(sameBytes(rc, before) || sameBytes(rc, after), "\(context): content after recovery")
                try SetCrashTests.expectClean(lab, context)
                lab.model = rc
                let line = sameBytes(rc, after) && !sameBytes(before, after) ? lineageAfter : base.lineage
                try lab.verifyChanges(mustAnswer: Set(line), context)
            }
            print(sweep.summary(calls: counter.count))
            #expect(sweep.problems.isEmpty, "\(sweep.problems)")
        }
    }
}
