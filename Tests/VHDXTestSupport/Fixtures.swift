import Foundation
import VHDX

/// Locates the shared real-world fixtures (../shared/fixtures beside the clone) and inflates
/// each once per test process into a private temp directory. Tests never write to these
/// copies; tests that modify an image copy it first with `scratchCopy`.
public enum Fixtures {
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static let sharedDir: URL = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures")

    /// This process's scratch directory, `$TMPDIR/vhdx-tests-<pid>`: removed when the process
    /// exits, and a run removes the ones processes that died before their exit (a killed run, a
    /// crash) left behind. A whole run writes a few GiB here, so leaking it fills a disk in days.
    public static let workDir: URL = {
        let tmp = FileManager.default.temporaryDirectory
        removeLeftovers(in: tmp)
        let dir = tmp.appendingPathComponent("vhdx-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: Fixtures.workDir) }
        return dir
    }()

    /// Removes `vhdx-tests-<pid>` directories whose process is gone (kill(pid, 0) says ESRCH);
    /// those of live processes — a parallel run — are left alone.
    private static func removeLeftovers(in tmp: URL) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? []
        for name in names where name.hasPrefix("vhdx-tests-") {
            guard let pid = pid_t(name.dropFirst("vhdx-tests-".count)), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(at: tmp.appendingPathComponent(name))
            }
        }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var inflated: [String: String] = [:]

    /// Path of the inflated fixture `name` (e.g. "dynamic.vhdx").
    public static func path(_ name: String) throws -> String {
        lock.lock(); defer { lock.unlock() }
        if let p = inflated[name] { return p }
        let gz = sharedDir.appendingPathComponent(name + ".gz").path
        guard FileManager.default.fileExists(atPath: gz) else {
            throw TestFailure("fixture \(gz) is missing: tests expect ../shared/fixtures beside the clone")
        }
        let out = workDir.appendingPathComponent(name).path
        try Shell.run("/usr/bin/gzip -dc '\(gz)' > '\(out)'")
        inflated[name] = out
        return out
    }

    /// A private copy of `path` that a test may modify.
    public static func scratchCopy(_ path: String, name: String = #function) throws -> String {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let out = workDir.appendingPathComponent("\(safe)-\(UInt32.random(in: 0...UInt32.max))-" + URL(fileURLWithPath: path).lastPathComponent).path
        try FileManager.default.copyItem(atPath: path, toPath: out)
        return out
    }

    public static func tempPath(_ name: String) -> String {
        workDir.appendingPathComponent("\(UInt32.random(in: 0...UInt32.max))-\(name)").path
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Runs shell commands for oracles (qemu-img, libvhdi, 7-Zip, sha256sum).
public enum Shell {
    @discardableResult
    public static func run(_ command: String, allowFailure: Bool = false) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", command]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Drain both pipes concurrently so a chatty command cannot fill one and block.
        nonisolated(unsafe) var errData = Data()
        let t = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        t.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !t.isFinished { usleep(1000) }
        let result = (p.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
        if !allowFailure && result.0 != 0 {
            throw TestFailure("command failed (\(result.0)): \(command)\n\(result.2)")
        }
        return result
    }

    /// Requires an oracle tool; the test command (Scripts/test.sh) installs them.
    public static func require(_ tool: String) throws {
        let r = try run("command -v \(tool)", allowFailure: true)
        if r.status != 0 { throw TestFailure("\(tool) is not installed; run `bash Scripts/test.sh`, which installs the oracles") }
    }

    /// A shell command printing the SHA-256 of the file it is given, or of stdin for "-", with
    /// Python's hashlib (OpenSSL: several times faster than coreutils' sha256sum here).
    public static let sha256Command = """
        /usr/bin/python3 -c 'import hashlib,sys
        f=open(sys.argv[1],"rb") if sys.argv[1]!="-" else sys.stdin.buffer
        h=hashlib.sha256()
        while True:
            b=f.read(8<<20)
            if not b: break
            h.update(b)
        print(h.hexdigest())'
        """

    public static func sha256(file: String) throws -> String {
        String(try run("\(sha256Command) '\(file)'").stdout.prefix(64))
    }
}

/// SHA-256 of an image's whole virtual disk, read through the library in 8 MiB pieces and piped
/// to Python's hashlib (OpenSSL: several times faster than coreutils' sha256sum on 10 GiB).
public func contentSHA256(_ image: VHDXFile) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", "import hashlib,sys\nh=hashlib.sha256()\nwhile True:\n b=sys.stdin.buffer.read(8<<20)\n if not b: break\n h.update(b)\nprint(h.hexdigest())"]
    let inPipe = Pipe(), outPipe = Pipe()
    p.standardInput = inPipe
    p.standardOutput = outPipe
    try p.run()
    nonisolated(unsafe) var digest = Data()
    let t = Thread { digest = outPipe.fileHandleForReading.readDataToEndOfFile() }
    t.start()
    let chunk = 8 << 20
    var offset: UInt64 = 0
    while offset < image.virtualSize {
        let n = Int(min(UInt64(chunk), image.virtualSize - offset))
        let bytes = try image.read(at: offset, count: n)
        try inPipe.fileHandleForWriting.write(contentsOf: bytes)
        offset += UInt64(n)
    }
    try inPipe.fileHandleForWriting.close()
    p.waitUntilExit()
    while !t.isFinished { usleep(1000) }
    return String(String(decoding: digest, as: UTF8.self).prefix(64))
}

/// The SHA-256 of a chain's virtual disk as libvhdi reads it (paths top first), through
/// Scripts/oracles/libvhdi-sha256.py; the whole run, so a failure can be shown.
public func libvhdiSHA256(_ chain: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let script = Fixtures.packageRoot.appendingPathComponent("Scripts/oracles/libvhdi-sha256.py").path
    return try Shell.run("/usr/bin/python3 '\(script)' " + chain.map { "'\($0)'" }.joined(separator: " "), allowFailure: true)
}

/// The built `vhdx` executable: the one beside the running test binary (same build, whatever
/// the scratch path), else the default debug or release build.
public func vhdxBinary() throws -> String {
    let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    let beside = exe.deletingLastPathComponent().appendingPathComponent("vhdx").path
    let candidates = [beside] + [".build/debug/vhdx", ".build/release/vhdx"].map { Fixtures.packageRoot.appendingPathComponent($0).path }
    for c in candidates where FileManager.default.isExecutableFile(atPath: c) { return c }
    throw TestFailure("the vhdx binary is not built; run `swift build` first")
}
