import Foundation
import Testing
import VHDX
import VHDXTestSupport

/// What a user gets around the commands: `--version`, shell completion scripts, and
/// Scripts/install.sh (given a built binary, so the test does not start a second build).
@Suite("vhdx version, completions, install")
struct ToolInstallTests {
    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    @Test func versionIsTheEngineVersion() throws {
        let r = try vhdx("--version")
        #expect(r.status == 0)
        #expect(r.stdout == SwiftVHDX.version + "\n")
        #expect(SwiftVHDX.version.split(separator: ".").count == 3)
    }

    /// Each shell's script names the tool and its subcommands; bash's also parses (`bash -n`).
    @Test(arguments: ["bash", "zsh", "fish"])
    func completionScript(_ shell: String) throws {
        let r = try vhdx("--generate-completion-script \(shell)")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("vhdx"))
        for sub in ["convert", "check", "merge", "track"] { #expect(r.stdout.contains(sub), "no \(sub) in the \(shell) script") }
        if shell == "bash" {
            let file = Fixtures.tempPath("vhdx.bash")
            try r.stdout.write(toFile: file, atomically: true, encoding: .utf8)
            defer { unlink(file) }
            #expect(try Shell.run("bash -n '\(file)'", allowFailure: true).status == 0)
        }
    }

    @Test func installPutsTheBinaryAndCompletionsUnderPrefix() throws {
        let prefix = Fixtures.tempPath("prefix with space")
        defer { try? FileManager.default.removeItem(atPath: prefix) }
        let script = Fixtures.packageRoot.appendingPathComponent("Scripts/install.sh").path
        let r = try Shell.run("PREFIX='\(prefix)' VHDX_BINARY='\(try vhdxBinary())' bash '\(script)'", allowFailure: true)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("installed vhdx \(SwiftVHDX.version)"))
        let installed = try Shell.run("'\(prefix)/bin/vhdx' --version", allowFailure: true)
        #expect(installed.stdout == SwiftVHDX.version + "\n")
        for file in ["share/bash-completion/completions/vhdx", "share/zsh/site-functions/_vhdx", "share/fish/vendor_completions.d/vhdx.fish"] {
            let size = (try? FileManager.default.attributesOfItem(atPath: "\(prefix)/\(file)")[.size] as? NSNumber)??.intValue ?? 0
            #expect(size > 100, "\(file) is missing or empty")
        }
        let bad = try Shell.run("PREFIX='\(prefix)' VHDX_BINARY=/nonexistent bash '\(script)'", allowFailure: true)
        #expect(bad.status != 0 && bad.stderr.contains("VHDX_BINARY=/nonexistent"))
    }
}
