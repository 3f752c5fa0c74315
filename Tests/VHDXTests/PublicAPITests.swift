import Foundation
import Testing
import VHDXTestSupport

/// The library as a user links it: `Tests/PublicAPIPackage` is a separate package depending on
/// swift-vhdx by path, so it sees only `public` symbols. It must build, run (create, write, read
/// back, inspect, check, a chain) and print what it read; a program touching an internal of
/// the engine (`VHDXFile.storage`, `package`) must not compile against the same modules; and the
/// README's library snippet must be that program. `Examples/PublicAPI` (convert and compare) is
/// type-checked the same way against this test run's own modules, then linked and run; and the
/// CLI's convert and compare commands are shown to need nothing `package`.
@Suite("Public API", .serialized)
struct PublicAPITests {
    static let package = Fixtures.packageRoot.appendingPathComponent("Tests/PublicAPIPackage").path
    static let scratch = Fixtures.packageRoot.appendingPathComponent(".build-public-api").path

    static let program = package + "/Sources/LibraryUsage/main.swift"

    @Test("a program using only the public API builds and runs; internals are not visible to it")
    func publicProgram() throws {
        // The package's program, compiled as a user's package compiles it: against this test
        // run's modules without swift-vhdx's package name (so `package` symbols are invisible),
        // linked with the same objects. (Building the package itself with SwiftPM makes a second
        // build of the engine: 47 CPU-seconds on a fresh clone; long mode does that too, below.)
        let (flags, bin) = try PublicAPITests.userFlags()
        let dir = Fixtures.tempPath("public-api")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let objects = PublicAPITests.objects(["VHDX", "VHDXFormat", "VHDXChangeTracking", "CCRC32C", "CPlatform"], in: bin)
        let build = try Shell.run("swiftc \(flags) '\(PublicAPITests.program)' \(objects) -o '\(dir)/LibraryUsage' 2>&1", allowFailure: true)
        #expect(build.status == 0, "the library-usage program does not build against the public API:\n\(build.stdout)")
        guard build.status == 0 else { return }
        let r = try Shell.run("'\(dir)/LibraryUsage' '\(dir)'")
        PublicAPITests.expectLibraryUsageOutput(r.stdout)

        // Against the same built modules, without swift-vhdx's package name: internals refused.
        let probe = dir + "/probe.swift"
        try "import VHDX\nlet f = try VHDXFile.open(path: \"x\")\nprint(f.storage)\n".write(toFile: probe, atomically: true, encoding: .utf8)
        let typecheck = try Shell.run("swiftc -typecheck \(flags) '\(probe)' 2>&1", allowFailure: true)
        #expect(typecheck.status != 0 && typecheck.stdout.contains("storage") && typecheck.stdout.contains("package"),
                "an internal was visible: \(typecheck.stdout)")
    }

    static func expectLibraryUsageOutput(_ out: String) {
        #expect(out.contains("read back: hello, vhdx"), "\(out)")
        #expect(out.contains("check: 0 corruption findings"), "\(out)")
        #expect(out.contains("through the chain: HELLO, vhdx (2 layers)"), "\(out)")
    }

    @Test("long mode: Tests/PublicAPIPackage builds with SwiftPM as a user's package and runs",
          .enabled(if: TestScale.factor > 1, "a second build of the engine; VHDX_LONG_TESTS=1 runs it"))
    func publicPackageBuilds() throws {
        try Shell.run("swift build --package-path '\(PublicAPITests.package)' --scratch-path '\(PublicAPITests.scratch)' 2>&1")
        let bin = try Shell.run("swift build --package-path '\(PublicAPITests.package)' --scratch-path '\(PublicAPITests.scratch)' --show-bin-path").stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let dir = Fixtures.tempPath("public-api-package")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        PublicAPITests.expectLibraryUsageOutput(try Shell.run("'\(bin)/LibraryUsage' '\(dir)'").stdout)
    }

    @Test("the DocC catalog converts without warnings against the public symbol graph")
    func documentationBuilds() throws {
        // What swift-docc-plugin's generate-documentation runs, on this test run's module:
        // swift-symbolgraph-extract (public symbols), then `docc convert` of the catalog. The
        // plugin's own build is a second build of the engine (62 CPU-seconds on a fresh clone);
        // long mode runs the plugin too, below.
        let (flags, _) = try PublicAPITests.userFlags()
        let dir = Fixtures.tempPath("docc")
        try FileManager.default.createDirectory(atPath: dir + "/symbols", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let extract = try Shell.run("swift-symbolgraph-extract -module-name VHDX \(flags) -minimum-access-level public "
                                    + "-skip-inherited-docs -output-dir '\(dir)/symbols' 2>&1", allowFailure: true)
        #expect(extract.status == 0, "\(extract.stdout.suffix(2000))")
        let root = Fixtures.packageRoot.path
        let r = try Shell.run("docc convert '\(root)/Sources/VHDX/VHDX.docc' --additional-symbol-graph-dir '\(dir)/symbols' "
                              + "--output-path '\(dir)/out' --fallback-display-name VHDX --fallback-bundle-identifier VHDX 2>&1",
                              allowFailure: true)
        #expect(r.status == 0, "\(r.stdout.suffix(2000))")
        let warnings = r.stdout.split(separator: "\n").filter { $0.contains("warning:") }
        #expect(warnings.isEmpty, "\(warnings.prefix(10))")
        #expect(FileManager.default.fileExists(atPath: dir + "/out/data/documentation/vhdx.json"), "no documentation page for the module")
    }

    @Test("long mode: the DocC catalog builds without warnings through swift-docc-plugin, as the README says",
          .enabled(if: TestScale.factor > 1, "a second build of the engine; VHDX_LONG_TESTS=1 runs it"))
    func documentationBuildsWithThePlugin() throws {
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
        let program = try String(contentsOfFile: PublicAPITests.program, encoding: .utf8)
        #expect(readme.contains("```swift\n" + program + "```"), "README's \"Use it as a library\" snippet differs from Tests/PublicAPIPackage/Sources/LibraryUsage/main.swift")
    }

    // MARK: Examples/PublicAPI: convert and compare as a user calls them

    static let example = Fixtures.packageRoot.appendingPathComponent("Examples/PublicAPI/main.swift").path

    /// `swiftc` flags that find the modules this test run was built with (beside the `vhdx`
    /// binary) — with no `-package-name`, so `package` symbols are invisible, as to a user — and
    /// the engine's C modules (CRC-32C, platform calls) through the module maps SwiftPM made.
    static func userFlags() throws -> (flags: String, bin: String) {
        let bin = URL(fileURLWithPath: try vhdxBinary()).deletingLastPathComponent().path
        let cModules = ["CCRC32C", "CPlatform"].map { "-Xcc -fmodule-map-file='\(bin)/\($0).build/module.modulemap'" }.joined(separator: " ")
        return ("-I '\(bin)/Modules' \(cModules)", bin)
    }

    /// The object files of `targets` in this build: a Swift target's from its `sources` list (a
    /// source deleted since an earlier build leaves a stale .o beside them that must not be
    /// linked), a C target's by glob.
    static func objects(_ targets: [String], in bin: String) -> String {
        targets.map { target in
            let dir = "\(bin)/\(target).build"
            guard let list = try? String(contentsOfFile: dir + "/sources", encoding: .utf8) else { return "'\(dir)/'*.o" }
            return list.split(separator: "\n").map { "'\(dir)/\(URL(fileURLWithPath: String($0)).lastPathComponent).o'" }.joined(separator: " ")
        }.joined(separator: " ")
    }

    @Test("Examples/PublicAPI (convert to raw and VHDX, stream, compare) type-checks without package access, links and runs")
    func exampleUsesOnlyThePublicAPI() throws {
        let (flags, bin) = try PublicAPITests.userFlags()
        let typecheck = try Shell.run("swiftc -typecheck \(flags) '\(PublicAPITests.example)' 2>&1", allowFailure: true)
        #expect(typecheck.status == 0, "Examples/PublicAPI uses something that is not public:\n\(typecheck.stdout)")

        // Linked against the objects of the same build and run: it does what it says.
        let dir = Fixtures.tempPath("public-api-example")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let objects = PublicAPITests.objects(["VHDX", "VHDXFormat", "CCRC32C", "CPlatform"], in: bin)
        try Shell.run("swiftc \(flags) '\(PublicAPITests.example)' \(objects) -o '\(dir)/example' 2>&1")
        let r = try Shell.run("'\(dir)/example' '\(dir)'")
        for line in ["source: vhdx, 67108864 bytes", "converted 67108864 bytes", "raw vs copy: identical", "strict: allocation at 0",
                     "after a write: content at 1048583", "streamed: 67108864 bytes, identical"] {
            #expect(r.stdout.contains(line), "\(line.debugDescription) missing from: \(r.stdout)")
        }
        // The files it wrote are what the tool says they are.
        let tool = try vhdxBinary()
        #expect(try Shell.run("'\(tool)' compare '\(dir)/disk.raw' '\(dir)/stream.raw'", allowFailure: true).status == 0)
        #expect(try Shell.run("'\(tool)' check '\(dir)/copy.vhdx'", allowFailure: true).status == 0)
    }

    /// What the CLI called before the public API existed (the package-only converters and
    /// comparer, DiskImage's allocation runs) stays invisible to a user's program, so the
    /// type-check above fails for any of them: the proof that the example, and the CLI that
    /// calls the same API, need nothing `package`.
    @Test("the package-only converters and comparer are invisible to a user's program")
    func packageOnlyConvertersAreInvisible() throws {
        let (flags, _) = try PublicAPITests.userFlags()
        let dir = Fixtures.tempPath("public-api-probe")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let probes = [
            "RawConverter": "let d = try DiskImage(path: \"x\")\nif let v = d.vhdx { try RawConverter(source: v).write(toPath: \"y\") }\n",
            "VHDXConverter": "let d = try DiskImage(path: \"x\")\ntry VHDXConverter(source: d, options: CreateOptions(virtualSize: 1)).write(toPath: \"y\")\n",
            "ImageComparer": "let d = try DiskImage(path: \"x\")\n_ = try ImageComparer(d, d).compare()\n",
            "allocationRun": "let d = try DiskImage(path: \"x\")\n_ = try d.allocationRun(at: 0)\n",
        ]
        for (symbol, body) in probes {
            let probe = "\(dir)/\(symbol).swift"
            try ("import VHDX\n" + body).write(toFile: probe, atomically: true, encoding: .utf8)
            let r = try Shell.run("swiftc -typecheck \(flags) '\(probe)' 2>&1", allowFailure: true)
            #expect(r.status != 0 && r.stdout.contains(symbol), "\(symbol) was visible to a user's program: \(r.stdout)")
        }
    }

    /// `vhdx convert` and `vhdx compare` are built on the public API alone: the CLI's sources,
    /// type-checked against the built modules as a user's package would see them, have no error
    /// in those commands or the helpers they use. (The errors elsewhere are what the README's
    /// "What stays package-only, and why" lists.)
    @Test("the convert and compare commands call only the public API")
    func convertAndCompareCommandsUseOnlyPublicAPI() throws {
        let (flags, bin) = try PublicAPITests.userFlags()
        let root = Fixtures.packageRoot.path
        // Every C module a dependency declares (NIO, BoringSSL, atomics…), so each import resolves.
        let checkouts = URL(fileURLWithPath: bin).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("checkouts").path
        let maps = try Shell.run("ls '\(bin)'/*.build/module.modulemap '\(checkouts)'/*/Sources/*/include/module.modulemap '\(root)/Sources/CZlib/module.modulemap' 2>/dev/null", allowFailure: true).stdout
            .split(separator: "\n").map { "-Xcc -fmodule-map-file='\($0)'" }.joined(separator: " ")
        let sources = try Shell.run("find '\(root)/Sources/VHDXTool' -name '*.swift'").stdout.split(separator: "\n").map { "'\($0)'" }.joined(separator: " ")
        let r = try Shell.run("swiftc -typecheck -continue-building-after-errors \(flags) \(maps) \(sources) 2>&1", allowFailure: true)
        let errors = r.stdout.split(separator: "\n").filter { $0.contains("error:") && !$0.hasPrefix(" ") }
        #expect(!errors.contains { $0.contains("missing required module") || $0.contains("no such module") }, "the CLI could not be type-checked: \(errors)")
        for file in ["ConvertCommand.swift", "CompareCommand.swift", "ImageTarget.swift", "ParentArguments.swift", "OutputFormat.swift", "Output.swift", "ByteCount.swift"] {
            let own = errors.filter { $0.contains("/VHDXTool/\(file):") }
            #expect(own.isEmpty, "\(file) uses what a user cannot: \(own)")
        }
    }
}
