import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

/// A change that fails part-way with an I/O error (ENOSPC at every write or resize it makes, in
/// turn) leaves a clean image at once, before any close: no pending log when the engine could
/// still write, content sector by sector as before the op or as after it, no corruption. When
/// the device fails for good the log may stay pending, and the next open replays it to a
/// consistent image. The session refuses further changes after a failure.
@Suite("Failed writes")
struct FailedWriteTests {
    struct Case: CustomStringConvertible, Sendable {
        let op: CrashConsistencyTests.Op
        let mode: FailingStorage.Mode
        var description: String { "\(op) (\(mode))" }
    }

    static let cases: [Case] = FailingStorage.Mode.allCases.flatMap { mode in CrashConsistencyTests.ops.map { Case(op: $0, mode: mode) } }

    @Test(arguments: cases)
    func failAtEveryMutation(_ c: Case) throws {
        let base = CrashConsistencyTests.base
        let before = try CrashConsistencyTests.content(base)
        let clean = FailingStorage(base)
        let image = try VHDXFile(storage: clean)
        let atOpen = clean.mutations
        try c.op.run(image)
        try image.close()
        let after = try CrashConsistencyTests.content(clean.bytes)
        let mutations = clean.mutations
        // The op's mutations (open's are header writes, tested elsewhere): the first eight,
        // then evenly spaced ones, the close's last ones included (each case costs content
        // reads and a check in a debug build).
        let ofOp = Array(atOpen..<mutations)
        let step = max(1, (ofOp.count - 8) / 8)
        let chosen = Array(ofOp.prefix(8)) + stride(from: 8, to: ofOp.count, by: step).map { ofOp[$0] } + ofOp.suffix(2)
        for i in Set(chosen).sorted() {
            let context = "\(c) failing at mutation \(i)/\(mutations)"
            let storage = FailingStorage(base)
            storage.failAt = i
            storage.mode = c.mode
            var opened: VHDXFile?
            var opFailed = false
            do {
                let img = try VHDXFile(storage: storage)
                opened = img
                try c.op.run(img)
            } catch {
                opFailed = true
            }
            // The failure hit close (which the op run leaves out): close now, and fail there.
            if !opFailed { try? opened?.close() }
            // Right after the error, as a process that exits on it leaves the file.
            let left = storage.bytes
            let ro = try VHDXFile(storage: MemoryStorage(left, writable: false))
            if c.mode != .everything && opFailed {
                #expect(ro.header.logGUID.isZero, "\(context): a pending log was left (op failed: \(opFailed))")
            }
            let got = try CrashConsistencyTests.content(left)
            var mixed: [Int] = []
            if !sameBytes(got, before) && !sameBytes(got, after) {
                #expect(got.prefix(8) == before.prefix(8) || got.prefix(8) == after.prefix(8), "\(context): size neither old nor new")
                for s in stride(from: 8, through: got.count - 512, by: 512) where !sameSector(got, before, s) && !sameSector(got, after, s) { mixed.append(s) }
            }
            #expect(mixed.isEmpty, "\(context): sectors neither old nor new at \(mixed.prefix(4))")
            #expect(try Checker.check(storage: MemoryStorage(left, writable: false)).corruptions == 0, "\(context)")
            // A writable reopen (replaying whatever is pending) reads the same.
            let m = MemoryStorage(left)
            try VHDXFile(storage: m).close()
            #expect(try sameBytes(CrashConsistencyTests.content(m.bytes), got), "\(context): reopening changed content")
            // A session whose change failed part-way takes no more (a failed DataWriteGuid
            // renewal is not one: nothing of the change was written, and the next one retries).
            if let opened, opened.journal.failure != nil {
                #expect(throws: VHDXError.self) { try opened.write([1], at: 0) }
            }
        }
    }
}
