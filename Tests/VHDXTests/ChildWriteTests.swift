import Foundation
import Testing
@testable import VHDX
import VHDXFormat
import VHDXTestSupport

@Suite("Child writes")
struct ChildWriteTests {
    /// Bits outside PARTIALLY_PRESENT mean nothing, and another writer may leave them set: a
    /// block that becomes PARTIALLY_PRESENT must start from a clear slice, or the parent's
    /// sectors would be hidden behind the child's unwritten (zero) ones.
    @Test func staleBitsOfANotPresentBlockNeverHideTheParent() throws {
        let dir = Fixtures.tempPath("stale-bits")
        try Shell.run("mkdir -p '\(dir)'")
        defer { _ = try? Shell.run("rm -rf '\(dir)'") }
        var o = CreateOptions(virtualSize: 8 << 20)
        o.blockSize = 1 << 20
        try VHDXCreator.create(path: "\(dir)/base.vhdx", options: o)
        do {
            let base = try VHDXFile.openFile(path: "\(dir)/base.vhdx", writable: true)
            try base.write([UInt8](repeating: 0x5A, count: 2 << 20), at: 0)
            try base.close()
        }
        var c = ChildOptions()
        c.blockSize = 1 << 20
        try VHDXCreator.createChild(path: "\(dir)/child.avhdx", parentPath: "\(dir)/base.vhdx", options: c)
        // Block 1 partial: the chunk gets a sector bitmap. Then fill block 0's slice with 1s
        // behind the engine's back, as a foreign writer might leave it.
        var sliceAt: UInt64 = 0
        do {
            let child = try VHDXFile.openChain(path: "\(dir)/child.avhdx", writable: true)
            try child.write([UInt8](repeating: 0x11, count: 512), at: 1 << 20)
            sliceAt = try child.sectorBitmapOffset(block: 0)
            try child.close()
        }
        do {
            let file = try FileStorage(path: "\(dir)/child.avhdx", mode: .readWrite)
            try file.write([UInt8](repeating: 0xFF, count: 256), at: sliceAt)  // 2048 sectors = block 0
            try file.synchronize()
        }
        let child = try VHDXFile.openChain(path: "\(dir)/child.avhdx", writable: true)
        #expect(try child.read(at: 512, count: 512) == [UInt8](repeating: 0x5A, count: 512))  // NOT_PRESENT: parent
        try child.write([UInt8](repeating: 0x22, count: 512), at: 0)
        try child.close()
        child.parent = nil
        _ = consume child
        let ro = try VHDXFile.openChain(path: "\(dir)/child.avhdx")
        #expect(try ro.read(at: 0, count: 512) == [UInt8](repeating: 0x22, count: 512))
        #expect(try ro.read(at: 512, count: (1 << 20) - 512).allSatisfy { $0 == 0x5A })
        #expect(try ro.read(at: 1 << 20, count: 512) == [UInt8](repeating: 0x11, count: 512))
    }

    /// Rewriting sectors a PARTIALLY_PRESENT block already holds changes no metadata: no log
    /// entry is written for it.
    @Test func rewritingPresentSectorsLogsNothing() throws {
        let m = MemoryStorage()
        var o = CreateOptions(virtualSize: 8 << 20)
        o.blockSize = 1 << 20
        try VHDXCreator.create(on: m, options: o)
        let parent = try VHDXFile(storage: MemoryStorage(m.bytes, writable: false))
        let dir = Fixtures.tempPath("rewrite")
        try Shell.run("mkdir -p '\(dir)'")
        defer { _ = try? Shell.run("rm -rf '\(dir)'") }
        try m.bytes.withUnsafeBytes { b in try FileStorage(path: "\(dir)/p.vhdx", mode: .create, lock: false).write(b, at: 0) }
        try VHDXCreator.createChild(path: "\(dir)/c.avhdx", parentPath: "\(dir)/p.vhdx")
        let child = try VHDXFile.openFile(path: "\(dir)/c.avhdx", writable: true)
        child.parent = parent
        try child.write([UInt8](repeating: 1, count: 4096), at: 8192)
        let sequence = child.journal.sequence
        try child.write([UInt8](repeating: 2, count: 4096), at: 8192)
        #expect(child.journal.sequence == sequence)
        #expect(try child.read(at: 8192, count: 4096) == [UInt8](repeating: 2, count: 4096))
        try child.close()
    }
}
