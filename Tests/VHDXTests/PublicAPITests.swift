import Foundation
import Testing
import VHDXTestSupport

/// The library as a user links it: `Tests/PublicAPIPackage` is a separate package depending on
/// swift-vhdx by path, so it sees only `public` symbols. It must build, run (create, write, read
/// back, inspect, check, a chain) and print what it read; a program touching an internal of
/// the engine (`VHDXFile.storage`, `package`) must not compile against the same modules; and the
/// README's library snippet must be that program.
@Suite("Public API", .serialized)
struct PublicAPITests {
    static let package = Fixtures.packageRoot.appendingPathComponent("Tests/PublicAPIPackage").path
    static let scratch = Fixtures.packageRoot.appendingPathComponent(".build-public-api").path

    @Test("a program using only the public API builds and runs; internals are not visible to it")
    func publicProgram() throws {
        try Shell.run("swift build --package-path '\(PublicAPITests.package)' --scratch-path '\(PublicAPITests.scratch)' 2>&1")
        let bin = try Shell.run("swift build --package-path '\(PublicAPITests.package)' --scratch-path '\(PublicAPITests.scratch)' --show-bin-path").stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let dir = Fixtures.tempPath("public-api")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Shell.run("'\(bin)/LibraryUsage' '\(dir)'")
        #expect(r.stdout.contains("read back: hello, vhdx"), "\(r.stdout)")
        #expect(r.stdout.contains("check: 0 corruption findings"), "\(r.stdout)")
        #expect(r.stdout.contains("through the chain: HELLO, vhdx (2 layers)"), "\(r.stdout)")

        // Against the same built modules, without swift-vhdx's package name: internals refused.
        let probe = dir + "/probe.swift"
        try "import VHDX\nlet f = try VHDXFile.open(path: \"x\")\nprint(f.storage)\n".write(toFile: probe, atomically: true, encoding: .utf8)
        // The engine's C modules (CRC-32C, platform calls) are found through the module maps
        // SwiftPM generated for them.
        let cModules = ["CCRC32C", "CPlatform"].map { "-Xcc -fmodule-map-file='\(bin)/\($0).build/module.modulemap'" }.joined(separator: " ")
        let typecheck = try Shell.run("swiftc -typecheck -I '\(bin)/Modules' \(cModules) '\(probe)' 2>&1",
                                      allowFailure: true)
        #expect(typecheck.status != 0 && typecheck.stdout.contains("storage") && typecheck.stdout.contains("package"),
                "an internal was visible: \(typecheck.stdout)")
    }

    @Test("the DocC catalog builds without warnings (swift-docc-plugin), as the README says")
    func documentationBuilds() throws {
        let root = Fixtures.packageRoot.path
        let r = try Shell.run("cd '\(root)' && swift package --disable-sandbox --scratch-path '\(root)/.build-docs' generate-documentation --target VHDX 2>&1",
                              allowFailure: true)
        #expect(r.status == 0 && r.stdout.contains("Generated documentation archive"), "\(r.stdout.suffix(2000))")
        let warnings = r.stdout.split(separator: "\n").filter { $0.contains("warning:") }
        #expect(warnings.isEmpty, "\(warnings.prefix(10))")
    }

    @Test("the README's library snippet is the program the test builds")
    func readmeSnippet() throws {
        let readme = try String(contentsOfFile: Fixtures.packageRoot.appendingPathComponent("README.md").path, encoding: .utf8)
        let program = try String(contentsOfFile: PublicAPITests.package + "/Sources/LibraryUsage/main.swift", encoding: .utf8)
        #expect(readme.contains("```swift\n" + program + "```"), "README's \"Use it as a library\" snippet differs from Tests/PublicAPIPackage/Sources/LibraryUsage/main.swift")
    }
}
