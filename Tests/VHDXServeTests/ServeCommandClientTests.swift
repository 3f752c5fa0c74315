import Foundation
import Testing
import VHDXTestSupport

/// `vhdx serve`'s usage errors (exit 64) and failures to open or listen (exit 1), before any
/// client connects.
@Suite struct ServeCommandClientTests {
    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try runTool("'\(try vhdxBinary())' \(args)", timeout: 60, allowFailure: true)
    }

    @Test func usageErrorsAreExit64() throws {
        for args in ["serve", "serve d.vhdx --socket a.sock --bind 127.0.0.1:1", "serve d.vhdx --bind 127.0.0.1:99999",
                     "serve d.vhdx --bind ::1:80", "serve d.vhdx --bind host:", "serve d.vhdx --tls required",
                     "serve d.vhdx --tls-cert c.pem", "serve d.vhdx --tls-cert c.pem --tls-key k.pem --tls maybe",
                     "serve d.vhdx --max-connections 0", "serve d.vhdx --read-only --overlay o.avhdx"] {
            let r = try vhdx(args)
            #expect(r.status == 64, "\(args): \(r.status) \(r.stderr)")
            #expect(r.stdout.isEmpty, "\(args)")
        }
    }

    @Test func aSourceThatCannotBeOpenedIsExit1() throws {
        let dir = Fixtures.tempPath("serve-cli")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let r = try runTool("cd '\(dir)' && '\(try vhdxBinary())' serve '\(dir)/missing.vhdx'", allowFailure: true)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("missing.vhdx"))
        // Nothing listens, nothing is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }
}
