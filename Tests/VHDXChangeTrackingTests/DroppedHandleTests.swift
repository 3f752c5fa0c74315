import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXTestSupport

/// A writable handle dropped without `close()` leaves a valid image: flushed, the log empty
/// (no replay needed at the next open), the data there, `check` clean — and change tracking
/// still covers the write (its fine set was not persisted, so the coarse map answers).
@Suite("Dropped handles")
struct DroppedHandleTests {
    @Test("a writable handle dropped without close() leaves a clean image with an empty log")
    func droppedHandle() throws {
        let path = Fixtures.tempPath("dropped.vhdx")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try VHDXCreator.create(path: path, options: CreateOptions(virtualSize: 64 << 20))
        let id: ChangeID
        do {
            let image = try VHDXFile.openFile(path: path, writable: true)
            id = try ChangeTracking.enable(image).seal()
            try image.close()
        }
        let bytes = [UInt8](repeating: 0x5A, count: 3 << 20)
        do {
            let image = try VHDXFile.openFile(path: path, writable: true)
            _ = try ChangeTracker.attach(to: image)
            try image.write(bytes, at: 8 << 20)
            // dropped here, never closed
        }
        let image = try VHDXFile.openFile(path: path)
        #expect(image.logReplay == nil, "the log was left with entries to replay")
        #expect(try image.read(at: 8 << 20, count: bytes.count) == bytes)
        let report = try Checker.check(path: path)
        #expect(report.findings.filter { $0.kind != .notice }.isEmpty, "\(report.findings)")
        let answer = try ChangeTracker.attach(to: image).map { try $0.changes(since: id) }
        let covered = answer?.ranges.contains { $0.offset <= 8 << 20 && $0.offset + $0.length >= (8 << 20) + UInt64(bytes.count) } ?? false
        #expect(covered, "tracking after the dropped handle: \(String(describing: answer?.ranges))")
    }
}
