import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXExport
import VHDXTestSupport

/// An I/O error is not damage, for exports: EIO, ENOSPC and EACCES injected through the
/// engine's file-system seam (`IOFaultPlan`) at every read and write of an export (the source,
/// the base, the stream written), a restore and a verify (the streams read, the image written)
/// and an apply (the stream, the image's origin record). Each fails with an I/O error (exit 1 as
/// the README documents; verify's "could not run" is 2) — never "damaged", "not an export" or
/// "take a full export" —, publishes nothing half-written, leaves no temporary, and the next
/// run without the fault gives the same result.
@Suite struct ExportIOFaultTests {
    /// The error says I/O: the export's own reason, or the engine's code with the errno.
    static func isIOError(_ error: Error, code: Int32) -> Bool {
        if let e = error as? ExportError, e.engineError == nil { return e.reason == .io }
        return IOFaultSweep.isIOError(error, code: code)
    }

    /// A full export, changes since, and their incremental; the target content.
    static func lab() throws -> (ExportLab, [UInt8], ChangeID) {
        let lab = try ExportCrashTests.base()
        try ExportCrashTests.runProgram(lab)
        let target = try ExportLab.content(lab.disk)
        let inc = try lab.export("inc.vxs", base: "full.vxs")
        try ExportCrashTests.runProgram(lab)
        return (lab, target, inc.header.targetID)
    }

    /// Runs `job` with a fault at every point of its calls (counted on a copy first), each on
    /// a fresh copy of `base`, and hands each failed run to `after`.
    /// `mustFail`: a run that succeeds despite its fault is an error (a write failure
    /// swallowed); reads may be retried, so a reading job may succeed (and then must be right).
    static func sweep(_ name: String, base: ExportLab, limit: Int = 12, calls: Set<IOFaultPlan.Call>? = nil, mustFail: Bool = true,
                      bytes: Range<UInt64>? = nil, file: String? = nil,
                      _ job: (ExportLab) throws -> Void, after: (ExportLab, String) throws -> Void) throws {
        let all: Set<IOFaultPlan.Call> = [.read, .write, .resize, .flush, .rename, .unlink, .syncDirectory]
        let counter = IOFaultPlan(calls: calls ?? all, bytes: bytes, file: file)
        do {
            let clean = try ExportLab(copying: base, name: "ioclean")
            try counter.run(in: clean.dir) { try job(clean) }
        }
        let sweep = IOFaultSweep(name)
        for p in IOFaultSweep.points(counter.kinds, limit: limit) {
            let lab = try ExportLab(copying: base, name: "iofault")
            let listing = try lab.listing()
            let plan = IOFaultPlan(failAt: p.index, code: p.code, calls: calls ?? all, bytes: bytes, file: file)
            let context = "\(name): \(plan.failAt!) with \(IOFaultPlan.name(p.code))"
            do {
                try plan.run(in: lab.dir) { try job(lab) }
                if mustFail { Issue.record("\(context): succeeded although \(plan.fired ?? "no call") failed") }
            } catch {
                sweep.failedWithIOError()
                #expect(isIOError(error, code: p.code), "\(name): \(plan.fired ?? "?") with \(IOFaultPlan.name(p.code)) became \(error), not an I/O error")
            }
            sweep.visited(plan)
            let leftovers = Set(try lab.listing()).subtracting(listing).filter { $0.contains(".tmp") || $0.hasPrefix(".") }
            #expect(leftovers.isEmpty, "\(context): temporaries left: \(leftovers)")
            try after(lab, "\(name): \(plan.fired ?? "?") failed with \(IOFaultPlan.name(p.code))")
        }
        print(sweep.summary(calls: counter.count))
            #expect(sweep.problems.isEmpty, "\(sweep.problems)")
    }

    @Test("an injected EIO/ENOSPC/EACCES at every call of an incremental export: an I/O error, no output or a whole one, nothing sealed lost; the next export is right")
    func exportFaults() throws {
        let (base, _, incID) = try Self.lab()
        let now = try ExportLab.content(base.disk)
        let answer = try Self.answer(base, since: incID)
        try Self.sweep("stream export", base: base, { try $0.export("next.vxs", base: "inc.vxs") }) { lab, context in
            if FileManager.default.fileExists(atPath: lab.path("next.vxs")) {
                _ = try Restorer.restore(to: lab.path("a.raw"), from: [lab.path("full.vxs"), lab.path("inc.vxs"), lab.path("next.vxs")])
                #expect(ExportLab.fileBytes(lab.path("a.raw")) == now, "\(context): a published export is not whole")
                try FileManager.default.removeItem(atPath: lab.path("a.raw"))
                // Published, so its target ID stays sealed: the next incremental starts from it.
                do { try lab.export("after.vxs", base: "next.vxs") } catch {
                    Issue.record("\(context): an incremental from the published export fails: \(error)")
                }
            }
            #expect(try Self.answer(lab, since: incID) == answer, "\(context): tracking answers differently")
            try lab.export("again.vxs", base: "inc.vxs")
            _ = try Restorer.restore(to: lab.path("b.raw"), from: [lab.path("full.vxs"), lab.path("inc.vxs"), lab.path("again.vxs")])
            #expect(ExportLab.fileBytes(lab.path("b.raw")) == now, "\(context): the next export is wrong")
        }
    }

    /// What tracking answers since the incremental's target: the next export's input.
    static func answer(_ lab: ExportLab, since: ChangeID) throws -> ChangeAnswer {
        let image = try VHDXFile.open(path: lab.disk)
        let tracker = try ChangeTracking.tracker(of: image)
        #expect(tracker.status.lastReset == nil)
        return try tracker.changes(since: since)
    }

    @Test("an injected EIO/ENOSPC/EACCES at every call of a restore (streams read, image written): an I/O error, no output, no temporary; the next restore is right",
          arguments: ["restored.vhdx", "restored.raw"])
    func restoreFaults(_ output: String) throws {
        let (base, target, _) = try Self.lab()
        let inputs = ["full.vxs", "inc.vxs"]
        try Self.sweep("restore to \(output)", base: base, { lab in try Restorer.restore(to: lab.path(output), from: inputs.map(lab.path)) }) { lab, context in
            #expect(!FileManager.default.fileExists(atPath: lab.path(output)), "\(context): an output was published")
            _ = try Restorer.restore(to: lab.path(output), from: inputs.map(lab.path))
            #expect(try ExportLab.content(lab.path(output)) == target, "\(context): the next restore is wrong")
        }
    }

    @Test("an injected EIO/ENOSPC/EACCES at every read of a verify: an I/O error, never 'differs' or 'damaged'; the next verify is identical")
    func verifyFaults() throws {
        let (base, _, _) = try Self.lab()
        _ = try Restorer.restore(to: base.path("restored.vhdx"), from: [base.path("full.vxs"), base.path("inc.vxs")])
        let bytes = ExportLab.fileBytes(base.path("restored.vhdx"))
        let inputs = ["full.vxs", "inc.vxs"]
        try Self.sweep("verify", base: base, calls: [.read], mustFail: false, { lab in
            let r = try Verifier.verify(lab.path("restored.vhdx"), against: inputs.map(lab.path))
            if !r.identical { throw TestFailure("verify answered \"differs\" (\(r))") }
        }) { lab, context in
            #expect(ExportLab.fileBytes(lab.path("restored.vhdx")) == bytes, "\(context): verify changed the image")
            let again = try Verifier.verify(lab.path("restored.vhdx"), against: inputs.map(lab.path))
            #expect(again.identical, "\(context): the next verify differs")
        }
    }

    @Test("an injected EIO/ENOSPC/EACCES at every call of an apply (the stream, the origin record, the image): an I/O error; the image is the old export, or marked and the re-run completes it",
          arguments: [false, true])
    func applyFaults(originRecordOnly: Bool) throws {
        let (base, target, _) = try Self.lab()
        _ = try Restorer.restore(to: base.path("image.vhdx"), from: [base.path("full.vxs")])
        let before = try ExportLab.content(base.path("image.vhdx"))
        let origin = try #require(try VHDXFile.open(path: base.path("image.vhdx")).region(ImageOrigin.regionGUID))
        let record = origin.fileOffset..<origin.fileOffset + UInt64(origin.length)
        try Self.sweep("apply\(originRecordOnly ? " (the origin record's reads and writes)" : "")", base: base,
                       bytes: originRecordOnly ? record : nil, file: originRecordOnly ? "image.vhdx" : nil, { lab in _ = try Applier.apply(lab.path("inc.vxs"), to: lab.path("image.vhdx")) }) { lab, context in
            let image = lab.path("image.vhdx")
            let now = try ExportLab.content(image)
            do {
                _ = try Restorer.restore(to: lab.path("copy.raw"), from: [image])
                #expect(now == before || now == target, "\(context): an unmarked image is neither the old export nor the new one")
            } catch let e as ExportError where e.reason == .interrupted {
                // Marked: refused as a base until the same apply completes it.
            }
            do {
                _ = try Applier.apply(lab.path("inc.vxs"), to: image)
            } catch let e as ExportError where e.reason == .alreadyApplied {
                #expect(now == target, "\(context): said already applied, but the content is not the target")
            }
            #expect(try ExportLab.content(image) == target, "\(context): the re-run did not complete the apply")
            #expect(try Verifier.verify(image, against: [lab.path("full.vxs"), lab.path("inc.vxs")]).identical, "\(context)")
        }
    }
}
