#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import VHDXObjectStore

/// A real S3 server (SeaweedFS, started by Scripts/s3-server.sh) for the tests: one per test
/// process, stopped at exit, or the one whose folder VHDX_S3_SERVER_DIR names (started by the
/// script beforehand, left running). Each test takes a fresh bucket.
package final class S3TestServer: Sendable {
    package static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    package static let script = packageRoot.appendingPathComponent("Scripts/s3-server.sh").path

    package let directory: String
    package let environment: [String: String]
    /// Started by this process (so stopped by it).
    package let owned: Bool

    /// The process's shared server (started on first use).
    package static let shared: Result<S3TestServer, TestServerError> = {
        do {
            let server: S3TestServer
            if let dir = ProcessInfo.processInfo.environment["VHDX_S3_SERVER_DIR"], !dir.isEmpty {
                server = try S3TestServer(directory: dir, output: run(["env", dir]), owned: false)
            } else {
                server = try start()
                sharedToStop.withLock { $0 = server.directory }
                atexit { S3TestServer.stopShared() }
            }
            return .success(server)
        } catch let error as TestServerError {
            return .failure(error)
        } catch {
            return .failure(TestServerError(message: "\(error)"))
        }
    }()

    package static func sharedServer() throws -> S3TestServer { try shared.get() }

    private static let sharedToStop = ServerLock<String?>(nil)

    private static func stopShared() {
        if let dir = sharedToStop.withLock({ $0 }) {
            _ = try? run(["stop", dir])
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    /// A private server (for tests that stop it).
    package static func start() throws -> S3TestServer {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("vhdx-s3-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))").path
        return try S3TestServer(directory: dir, output: run(["start", dir]), owned: true)
    }

    private init(directory: String, output: String, owned: Bool) throws {
        self.directory = directory
        self.owned = owned
        var env: [String: String] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("export ") {
            let pair = line.dropFirst("export ".count).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { env[String(pair[0])] = String(pair[1]) }
        }
        guard env["AWS_ENDPOINT_URL"] != nil else { throw TestServerError(message: "s3-server.sh printed no endpoint: \(output)") }
        // Hermetic: no profile or file of the machine's user leaks in.
        env["HOME"] = directory
        environment = env
    }

    /// Stops a private server.
    package func stop() {
        _ = try? Self.run(["stop", directory])
    }

    /// Starts a private server again in the same folder (same data, new ports).
    package func restarted() throws -> S3TestServer {
        try S3TestServer(directory: directory, output: Self.run(["start", directory]), owned: true)
    }

    package func configuration(secret: String? = nil) throws -> S3Configuration {
        var env = environment
        if let secret { env["AWS_SECRET_ACCESS_KEY"] = secret }
        return try S3Configuration.resolve(environment: env)
    }

    /// A client with quick retries (tests of failures should not wait long).
    package func client(secret: String? = nil, retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: 0.05, maxDelay: 0.2)) throws -> S3Client {
        S3Client(configuration: try configuration(secret: secret), retry: retry, connectTimeout: 2, readTimeout: 20)
    }

    /// A new, empty bucket.
    package func freshBucket(_ client: S3Client) throws -> String {
        let name = "t-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
        try client.createBucket(String(name))
        return String(name)
    }

    /// Runs the AWS CLI (the independent client) against this server; its standard output.
    @discardableResult
    package func aws(_ arguments: [String]) throws -> String {
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        env["AWS_CONFIG_FILE"] = "/dev/null"
        env["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
        return try Self.execute("/usr/bin/env", ["aws"] + arguments, environment: env)
    }

    package static func run(_ arguments: [String]) throws -> String {
        try execute("/bin/bash", [script] + arguments, environment: ProcessInfo.processInfo.environment)
    }

    /// Runs a tool (posix_spawn, then waitpid) with its output in temporary files, not pipes:
    /// the server the script leaves running in the background must hold nothing of ours open.
    package static func execute(_ tool: String, _ arguments: [String], environment: [String: String]) throws -> String {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("vhdx-s3-run-\(UUID().uuidString)").path
        let outPath = base + ".out", errPath = base + ".err"
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([tool] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, tool, &actions, nil, argv, envp)
        guard spawned == 0 else { throw TestServerError(message: "cannot run \(tool): error \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let exited = status & 0x7f == 0 && (status >> 8) & 0xff == 0
        guard exited else {
            let errors = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            throw TestServerError(message: "\(([tool] + arguments).joined(separator: " ")) failed (status \(status)): \(errors)\(output)")
        }
        return output
    }
}

package struct TestServerError: Error, CustomStringConvertible {
    package let message: String
    package var description: String { message }
}

/// A lock around a value (Synchronization's Mutex needs macOS 15; this is enough here).
final class ServerLock<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Deterministic pseudo-random bytes (xorshift), so a re-run produces the same stream.
package func testBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    var out = [UInt8](repeating: 0, count: count)
    var i = 0
    while i < count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        var word = state
        for _ in 0..<8 where i < count {
            out[i] = UInt8(truncatingIfNeeded: word)
            word >>= 8
            i += 1
        }
    }
    return out
}
