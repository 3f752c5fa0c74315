#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VHDXTestSupport

/// `vhdx serve …` run as a user runs it: a child process on a unix socket of its own, its
/// stdout in a file the test reads the URI from, stopped with SIGTERM (or killed).
final class ServeProcess {
    let process = Process()
    let socket: String
    let stdoutPath: String
    let stderrPath: String
    /// The `nbd+unix://` URI the server printed.
    private(set) var uri = ""

    /// Starts `vhdx serve SOURCE ARGS… --socket S` and waits (up to 60 s) for its URI line.
    init(_ source: String, _ args: [String] = [], file: String = #fileID, line: Int = #line) throws {
        let dir = Fixtures.tempPath("serve")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        socket = dir + "/s.sock"
        stdoutPath = dir + "/out.txt"
        stderrPath = dir + "/err.txt"
        FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: try vhdxBinary())
        process.arguments = ["serve", source] + args + ["--socket", socket]
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        try process.run()
        for _ in 0..<1200 {
            if let found = stdout.split(separator: "\n").first(where: { $0.hasPrefix("nbd") }) {
                uri = String(found)
                return
            }
            guard process.isRunning else { break }
            usleep(50_000)
        }
        if process.isRunning { process.terminate(); process.waitUntilExit() }
        throw TestFailure("vhdx serve \(source) \(args) did not print its URI (exit \(process.isRunning ? -1 : process.terminationStatus)): \(stderr)")
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// SIGTERM, then the exit status (the graceful stop: 0).
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// SIGKILL: no clean close at all.
    func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
}

/// The CLI, the clients and the hashes the end-to-end tests compare.
enum E2E {
    static func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    /// `vhdx ARGS`, which must succeed; its stdout trimmed.
    @discardableResult
    static func ok(_ args: String) throws -> String {
        let r = try vhdx(args)
        guard r.status == 0 else { throw TestFailure("vhdx \(args): exit \(r.status): \(r.stderr)") }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// SHA-256 of what `vhdx convert SOURCE -` writes (the engine's own reading of the disk).
    static func convertSHA(_ source: String) throws -> String {
        String(try Shell.run("'\(try vhdxBinary())' convert '\(source)' - | \(Shell.sha256Command) -").stdout.prefix(64))
    }

    /// SHA-256 of a `size`-byte disk of zeros with `fills` (offset, length, byte) applied in order:
    /// the expected content from a model, not from our own reader.
    static func modelSHA(size: Int, _ fills: [(Int, Int, UInt8)]) -> String {
        var bytes = [UInt8](repeating: 0, count: size)
        for (at, n, b) in fills { bytes.replaceSubrange(at..<at + n, with: repeatElement(b, count: n)) }
        return sha256Hex(bytes)
    }

    /// SHA-256 of what `nbdcopy URI` pulls.
    static func pullSHA(_ uri: String) throws -> String {
        try Shell.require("nbdcopy")
        return String(try Shell.run("nbdcopy '\(uri)' - | \(Shell.sha256Command) -").stdout.prefix(64))
    }

    /// Runs a python3-libnbd script (system python: the module is Debian's) with `args`.
    @discardableResult
    static func python(_ script: String, _ args: [String]) throws -> String {
        let path = Fixtures.tempPath("client.py")
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let quoted = args.map { "'\($0)'" }.joined(separator: " ")
        let r = try Shell.run("/usr/bin/python3 '\(path)' \(quoted)", allowFailure: true)
        guard r.status == 0 else { throw TestFailure("python client failed (\(r.status)): \(r.stderr)") }
        return r.stdout
    }

    /// `DIR/vm.vhdx`: created, tracked, written at offset 0 (`data`: `--pattern … --length …`)
    /// and sealed; the sealed change ID.
    static func trackedDisk(in dir: String, size: String, granule: String? = nil, data: String) throws -> (disk: String, id: String) {
        let disk = dir + "/vm.vhdx"
        try ok("create '\(disk)' \(size)")
        try ok("track enable '\(disk)'" + (granule.map { " --granule \($0)" } ?? ""))
        try ok("write '\(disk)' --offset 0 \(data)")
        return (disk, try ok("track seal '\(disk)'"))
    }

    static func dir(_ name: String) throws -> String {
        let d = Fixtures.tempPath(name)
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}
