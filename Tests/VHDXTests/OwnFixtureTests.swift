import Foundation
import Testing
@testable import VHDX
import VHDXTestSupport

/// The project's own committed fixtures (Fixtures/README.md) decode to their recorded content.
@Suite("Own fixtures")
struct OwnFixtureTests {
    static let expected: [(String, String, UInt32, VHDXFile.DiskType)] = [
        ("qemu-dynamic-odd.vhdx", "73a23109b7baa9e92fb2c8e706df3d50c835243e34a84fa639f4209682fcba29", 512, .dynamic),
        ("qemu-fixed-6M.vhdx", "61053c6ecec052cfd63bc0142aefc29a0c179f1208577386e3347ff3e256944b", 512, .fixed),
        ("lss4096-patched.vhdx", "2fe2d7a42a810a739cea2f5eb548818e66a161eef960817df163b666a7f890c9", 4096, .dynamic),
    ]

    static func inflate(_ name: String) throws -> String {
        let out = Fixtures.tempPath(name)
        try Shell.run("/usr/bin/gzip -dc '\(Fixtures.packageRoot.appendingPathComponent("Fixtures/\(name).gz").path)' > '\(out)'")
        return out
    }

    @Test("content and geometry", arguments: expected)
    func content(_ c: (String, String, UInt32, VHDXFile.DiskType)) throws {
        let path = try OwnFixtureTests.inflate(c.0)
        let image = try VHDXFile.openFile(path: path)
        #expect(image.layout.logicalSectorSize == c.2)
        #expect(image.diskType == c.3)
        #expect(try contentSHA256(image) == c.1)
        #expect(try Checker.check(path: path).exitCode == 0)
        unlink(path)
    }

    @Test func oddSizedLastBlockIsPartial() throws {
        let path = try OwnFixtureTests.inflate("qemu-dynamic-odd.vhdx")
        let image = try VHDXFile.openFile(path: path)
        #expect(image.virtualSize == 7_341_568)
        #expect(image.geometry.dataBlockCount == 8)
        let last = try #require(try image.extents().last)
        #expect(last.virtualOffset + last.length == image.virtualSize)
        #expect(try image.read(at: image.virtualSize - 2048, count: 2048).allSatisfy { $0 == 0x33 })
        // Reading one byte past the end is an error, not a short read.
        #expect(throws: VHDXError(.outOfBounds, "")) { try image.read(at: image.virtualSize - 1, count: 2) }
        unlink(path)
    }
}
