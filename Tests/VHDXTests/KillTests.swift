import Foundation
import Testing
import VHDXTestSupport

/// A short run of Scripts/kill-test.sh: `vhdx write` killed with SIGKILL at random moments; after
/// each kill `vhdx check` and `qemu-img check` must find no corruption and the image must open.
@Suite("Kill -9 during writes", .serialized)
struct KillTests {
    @Test("25 writers killed at random moments leave no corrupt image")
    func killDuringWrites() throws {
        try Shell.require("qemu-img")
        let script = Fixtures.packageRoot.appendingPathComponent("Scripts/kill-test.sh").path
        let r = try Shell.run("KILLS=25 VHDX_BIN='\(try vhdxBinary())' KILL_DIR='\(Fixtures.workDir.path)' bash '\(script)'", allowFailure: true)
        #expect(r.status == 0, "kill-test failed (exit \(r.status)):\n\(r.stdout)\n\(r.stderr)")
        let summary = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(summary.hasPrefix("kill-test: PASS: 25 iterations"), "summary: \(summary)")
        // The test means something only if some kills landed while a writer was running.
        let mid = summary.firstMatch(of: /(\d+) killed mid-write/).flatMap { Int($0.1) }
        #expect((mid ?? 0) >= 1, "no kill landed mid-write: \(summary)")
    }
}
