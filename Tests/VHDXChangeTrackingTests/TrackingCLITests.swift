import Foundation
import Testing
import VHDXTestSupport

/// What `info` and `check` say about tracking, through the CLI.
@Suite("Tracking in info and check", .serialized)
struct TrackingCLITests {
    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    @Test("info shows the tracking state; check reports a damaged tracking region as corruption until the next seal")
    func infoAndCheck() throws {
        let dir = Fixtures.tempPath("trackcli")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let image = "\(dir)/t.vhdx"
        #expect(try vhdx("create '\(image)' 64M").status == 0)
        let untracked = try JSONSerialization.jsonObject(with: Data(try vhdx("info --json '\(image)'").stdout.utf8)) as? [String: Any]
        #expect((untracked?["change-tracking"] as? [String: Any])?["enabled"] as? Bool == false)
        #expect(try vhdx("track enable '\(image)' --granule 4K --history 3").status == 0)
        let id = try vhdx("track seal '\(image)'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let info = try #require(try JSONSerialization.jsonObject(with: Data(try vhdx("info --json '\(image)'").stdout.utf8)) as? [String: Any])
        let t = try #require(info["change-tracking"] as? [String: Any])
        #expect(t["enabled"] as? Bool == true)
        #expect((t["granule"] as? NSNumber)?.intValue == 4096)
        #expect((t["history"] as? NSNumber)?.intValue == 3)
        #expect(t["latest-id"] as? String == id)
        #expect(try vhdx("info '\(image)'").stdout.contains("latest change ID: \(id)"))
        #expect(try vhdx("check '\(image)'").status == 0)

        // Damage the region's header page (not its copy in the log).
        let data = try Data(contentsOf: URL(fileURLWithPath: image))
        var bytes = Array(data)
        let signature = Array("VXTRACK1".utf8)
        let at = try #require(stride(from: 2 << 20, to: bytes.count - 4096, by: 4096).first { Array(bytes[$0..<$0 + 8]) == signature })
        bytes[at + 300] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: image))
        let c = try vhdx("check '\(image)'")
        #expect(c.status == 2 && c.stdout.contains("change tracking") && c.stdout.contains("damaged"), "\(c.stdout)")
        #expect(try vhdx("track changes '\(image)' --since \(id)").status == 4)
        // The next seal records the reset; the region checks clean again.
        #expect(try vhdx("track seal '\(image)'").status == 0)
        #expect(try vhdx("check '\(image)'").status == 0)
    }
}
