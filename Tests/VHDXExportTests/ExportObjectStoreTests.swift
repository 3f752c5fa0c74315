#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import VHDX
import VHDXExport
import VHDXObjectStore
import VHDXTestSupport

/// Export, restore, apply and verify with `s3://` names, through the CLI, against a real
/// S3 server (SeaweedFS, `S3TestServer`) and the AWS CLI as the independent client.
@Suite(.serialized) struct ExportObjectStoreTests {
    let server: S3TestServer
    let bucket: String

    init() throws {
        server = try S3TestServer.sharedServer()
        let client = try server.client()
        bucket = try server.freshBucket(client)
    }

    /// The CLI with the server's environment (endpoint, keys, region); `extra` overrides it.
    func vhdx(_ args: String, _ extra: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        let env = server.environment.merging(extra) { $1 }.map { "\($0.key)='\($0.value)'" }.sorted().joined(separator: " ")
        return try Shell.run("env \(env) '\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    func url(_ key: String) -> String { "s3://\(bucket)/\(key)" }

    @Test("the backup cycle through s3://: full and incrementals (writes, grow, shrink, trim) restore, apply and verify to the source")
    func cycle() throws {
        let lab = try ExportLab(size: 16 << 20)
        try lab.write(3 << 20, at: 0)
        let full = try vhdx("export '\(lab.disk)' \(url("vm/full.vxs"))")
        #expect(full.status == 0, "\(full.stderr)")
        var chain = [url("vm/full.vxs")]
        var models = [lab.model]
        let steps: [(ExportLab) throws -> Void] = [
            { try $0.write(70_000, at: 5 << 20) },
            { try $0.resize(to: 24 << 20); try $0.write(1 << 20, at: 10 << 20) },
            { try $0.trim(1 << 20, at: 1 << 20); try $0.resize(to: 12 << 20) },
        ]
        for (i, step) in steps.enumerated() {
            try step(lab)
            let name = url("vm/inc\(i + 1).vxs")
            let inc = try vhdx("export '\(lab.disk)' \(name) --base \(chain.last!)")
            #expect(inc.status == 0, "\(inc.stderr)")
            chain.append(name)
            models.append(lab.model)
        }
        // Restore from the bucket equals the source; so does a full restore then applies.
        let restored = lab.path("restored.vhdx")
        let r = try vhdx("restore '\(restored)' \(chain.joined(separator: " "))")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try ExportLab.content(restored) == lab.model)
        let applied = lab.path("applied.vhdx")
        #expect(try vhdx("restore '\(applied)' \(chain[0])").status == 0)
        for (i, inc) in chain.dropFirst().enumerated() {
            let a = try vhdx("apply '\(applied)' \(inc)")
            #expect(a.status == 0, "\(a.stderr)")
            #expect(try ExportLab.content(applied) == models[i + 1], "after applying \(inc)")
        }
        let v = try vhdx("verify '\(applied)' \(chain.joined(separator: " "))")
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        // Applied twice: refused as with a file (exit 3).
        #expect(try vhdx("apply '\(applied)' \(chain.last!)").status == 3)
    }

    @Test("what vhdx uploads, aws s3 cp downloads and vhdx restores; what aws s3 cp uploads, vhdx restores from s3://")
    func interoperatesWithTheAWSCLI() throws {
        let lab = try ExportLab(size: 16 << 20)
        try lab.write(6 << 20, at: 1 << 20)
        #expect(try vhdx("export '\(lab.disk)' \(url("a/full.vxs"))").status == 0)
        _ = try server.aws(["s3", "cp", url("a/full.vxs"), lab.path("down.vxs")])
        #expect(try vhdx("restore '\(lab.path("r1.vhdx"))' '\(lab.path("down.vxs"))'").status == 0)
        #expect(try ExportLab.content(lab.path("r1.vhdx")) == lab.model)

        try lab.write(100_000, at: 9 << 20)
        _ = try lab.export("inc.vxs", base: "down.vxs")
        _ = try server.aws(["s3", "cp", lab.path("inc.vxs"), url("a/inc.vxs")])
        let r = try vhdx("restore '\(lab.path("r2.vhdx"))' \(url("a/full.vxs")) \(url("a/inc.vxs"))")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try ExportLab.content(lab.path("r2.vhdx")) == lab.model)
    }

    @Test("wrong credentials, a missing bucket, a missing key, an object that is not an export, an existing key: distinct errors, nothing sealed")
    func refusals() throws {
        let lab = try ExportLab(size: 8 << 20)
        try lab.write(1 << 20, at: 0)
        #expect(try vhdx("export '\(lab.disk)' \(url("full.vxs"))").status == 0)
        let sealed = try vhdx("track status '\(lab.disk)' --json").stdout

        let badSecret = try vhdx("restore '\(lab.path("x.vhdx"))' \(url("full.vxs"))", ["AWS_SECRET_ACCESS_KEY": "wrong-secret"])
        #expect(badSecret.status == 1)
        #expect(badSecret.stderr.contains("SignatureDoesNotMatch") || badSecret.stderr.contains("InvalidAccessKeyId"), "\(badSecret.stderr)")
        let badKey = try vhdx("export '\(lab.disk)' \(url("other.vxs"))", ["AWS_ACCESS_KEY_ID": "NOSUCHKEYID"])
        #expect(badKey.status == 1)
        #expect(badKey.stderr.contains("InvalidAccessKeyId") || badKey.stderr.contains("SignatureDoesNotMatch"), "\(badKey.stderr)")
        let noBucket = try vhdx("export '\(lab.disk)' s3://no-such-bucket-\(bucket)/full.vxs")
        #expect(noBucket.status == 1)
        #expect(noBucket.stderr.contains("NoSuchBucket"), "\(noBucket.stderr)")
        let noKey = try vhdx("restore '\(lab.path("x.vhdx"))' \(url("missing.vxs"))")
        #expect(noKey.status == 1)
        #expect(noKey.stderr.contains("NoSuchKey"), "\(noKey.stderr)")
        FileManager.default.createFile(atPath: lab.path("junk"), contents: Data(repeating: 7, count: 10_000))
        _ = try server.aws(["s3", "cp", lab.path("junk"), url("junk.vxs")])
        let junk = try vhdx("restore '\(lab.path("x.vhdx"))' \(url("junk.vxs"))")
        #expect(junk.status == 2, "\(junk.stderr)")
        let exists = try vhdx("export '\(lab.disk)' \(url("full.vxs"))")
        #expect(exists.status == 1)
        #expect(exists.stderr.contains("already exists"))
        #expect(!FileManager.default.fileExists(atPath: lab.path("x.vhdx")))
        // None of the refused exports sealed a change ID.
        #expect(try vhdx("track status '\(lab.disk)' --json").stdout == sealed)
        // An image output is local; a restore writes a local image.
        #expect(try vhdx("export '\(lab.disk)' \(url("img.vhdx"))").status == 1)
        #expect(try vhdx("restore \(url("out.vhdx")) \(url("full.vxs"))").status == 1)
    }

    @Test("consolidate from and to s3://, the next incremental applies on the result; backups list of a prefix")
    func consolidateAndList() throws {
        let lab = try ExportLab(size: 16 << 20)
        try lab.write(2 << 20, at: 0)
        #expect(try vhdx("export '\(lab.disk)' \(url("vm/full.vxs"))").status == 0)
        var chain = [url("vm/full.vxs")]
        for i in 1...3 {
            try lab.write(300_000, at: i << 20)
            if i == 2 { try lab.resize(to: 20 << 20) }
            let name = url("vm/inc\(i).vxs")
            #expect(try vhdx("export '\(lab.disk)' \(name) --base \(chain.last!)").status == 0)
            chain.append(name)
        }
        let c = try vhdx("consolidate \(url("vm/cons.vxs")) \(chain.joined(separator: " "))")
        #expect(c.status == 0, "\(c.stderr)")
        try lab.write(4096, at: 15 << 20)
        #expect(try vhdx("export '\(lab.disk)' \(url("vm/inc4.vxs")) --base \(chain.last!)").status == 0)
        let r = try vhdx("restore '\(lab.path("r.vhdx"))' \(url("vm/cons.vxs")) \(url("vm/inc4.vxs"))")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try ExportLab.content(lab.path("r.vhdx")) == lab.model)
        _ = try server.aws(["s3", "cp", lab.path("r.vhdx"), url("vm/not-a-stream.bin")])
        let listed = try vhdx("backups list \(url("vm/")) --json")
        #expect(listed.status == 0, "\(listed.stderr)")
        for name in ["full.vxs", "inc1.vxs", "inc3.vxs", "cons.vxs", "inc4.vxs", "not-a-stream.bin"] {
            #expect(listed.stdout.contains(name), "\(name) missing from the listing: \(listed.stdout)")
        }
        #expect(listed.stdout.contains("consolidated"))
    }

    @Test("SIGKILL during an upload: no object under the key; the next run publishes a whole export, keeping the parts the killed run stored")
    func killedUpload() throws {
        let lab = try ExportLab(size: 160 << 20, blockSize: 32 << 20)
        try lab.write(144 << 20, at: 0)
        let client = try server.client()
        let key = try S3Location(bucket: bucket, key: "killed/full.vxs")
        let export = try CLIProcess.launch(["export", lab.disk, url("killed/full.vxs")], server.environment)
        let pid = export.process.processIdentifier
        // Killed once it has stored a few parts (of 8 MiB; the stream is ~144 MiB, 18 parts).
        var stored = 0
        for _ in 0..<600 {
            if let upload = try client.listMultipartUploads(key).first,
               let parts = try? client.listParts(key, uploadID: upload.uploadID), parts.count >= 4 {
                stored = parts.count
                break
            }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        export.process.waitUntilExit()
        #expect(stored >= 4, "the export finished before it could be killed mid-upload")
        #expect(throws: S3Error.self) { try client.headObject(key) }
        let again = try vhdx("export '\(lab.disk)' \(url("killed/full.vxs")) --json")
        #expect(again.status == 0, "\(again.stderr)")
        // The re-run continued the killed upload: every stored part but the first (which holds
        // the header, with its own time) had the same bytes and was kept.
        let reused = try #require(again.stdout.firstMatch(of: /"parts-reused":\s*(\d+)/)).1
        #expect(Int(reused)! >= stored - 1, "\(again.stdout)")
        #expect(try client.listMultipartUploads(key).isEmpty)
        #expect(try vhdx("restore '\(lab.path("r.vhdx"))' \(url("killed/full.vxs"))").status == 0)
        #expect(try ExportLab.content(lab.path("r.vhdx")) == lab.model)
        #expect(try vhdx("verify '\(lab.disk)' \(url("killed/full.vxs"))").status == 0)
    }

    @Test("eight disks exported at once by eight processes into one bucket: each restores to its source")
    func eightAtOnce() throws {
        let labs = try (0..<8).map { i in
            let lab = try ExportLab(size: 8 << 20, seed: UInt64(100 + i), name: "fleet\(i)")
            try lab.write(3 << 20, at: i << 18)
            return lab
        }
        let exports = try labs.enumerated().map { i, lab in try CLIProcess.launch(["export", lab.disk, url("fleet/vm\(i)/full.vxs")], server.environment) }
        for p in exports { p.process.waitUntilExit() }
        #expect(exports.allSatisfy { $0.process.terminationStatus == 0 }, "\(exports.map { $0.stderr() })")
        for (i, lab) in labs.enumerated() {
            let r = try vhdx("restore '\(lab.path("r.vhdx"))' \(url("fleet/vm\(i)/full.vxs"))")
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try ExportLab.content(lab.path("r.vhdx")) == lab.model, "vm\(i) does not restore to its source")
        }
    }
}

/// The server stopped in the middle of an upload and of a download (a private server, stopped
/// and started again on other ports): a clear error, nothing published or left half-written, no
/// change ID sealed; the next run once the server is back succeeds.
@Suite(.serialized) struct ObjectStoreOutageTests {
    @Test("the server stopped mid-upload and mid-download")
    func serverStopped() throws {
        let server = try S3TestServer.start()
        defer { server.stop() }
        let bucket = try server.freshBucket(try server.client())
        let lab = try ExportLab(size: 128 << 20, blockSize: 32 << 20)
        try lab.write(112 << 20, at: 0)
        let key = "down/full.vxs"
        let status = try Shell.run("'\(try vhdxBinary())' track status '\(lab.disk)' --json").stdout

        // Mid-upload: stopped once the multipart upload has begun.
        let exporting = try CLIProcess.launch(["export", lab.disk, "s3://\(bucket)/\(key)"], server.environment)
        let client = try server.client()
        var began = false
        for _ in 0..<600 {
            if !(try client.listMultipartUploads(try S3Location(bucket: bucket, key: key))).isEmpty { began = true; break }
            usleep(20_000)
        }
        server.stop()
        exporting.process.waitUntilExit()
        #expect(began, "the export finished before the upload could be interrupted")
        #expect(exporting.process.terminationStatus == 1)
        #expect(exporting.stderr().contains("s3://\(bucket)/\(key)"), "\(exporting.stderr())")
        #expect(try Shell.run("'\(try vhdxBinary())' track status '\(lab.disk)' --json").stdout == status, "a failed upload sealed a change ID")

        // Back (new ports): nothing was published; the export runs again whole.
        let back = try server.restarted()
        let backClient = try back.client()
        #expect(throws: S3Error.self) { try backClient.headObject(try S3Location(bucket: bucket, key: key)) }
        let env = back.environment.map { "\($0.key)='\($0.value)'" }.sorted().joined(separator: " ")
        let again = try Shell.run("env \(env) '\(try vhdxBinary())' export '\(lab.disk)' s3://\(bucket)/\(key)", allowFailure: true)
        #expect(again.status == 0, "\(again.stderr)")

        // Mid-download: stopped once the restore's temporary output exists.
        let restoring = try CLIProcess.launch(["restore", lab.path("r.vhdx"), "s3://\(bucket)/\(key)"], back.environment)
        var started = false
        for _ in 0..<600 {
            if (try lab.listing()).contains(where: { $0.hasPrefix(".r.vhdx") }) { started = true; break }
            usleep(20_000)
        }
        back.stop()
        restoring.process.waitUntilExit()
        #expect(started, "the restore finished before the download could be interrupted")
        #expect(restoring.process.terminationStatus == 1, "\(restoring.stderr())")
        let left = try lab.listing()
        #expect(!left.contains(where: { $0.hasPrefix(".r.vhdx") || $0 == "r.vhdx" }), "\(left)")
        let third = try back.restarted()
        let env3 = third.environment.map { "\($0.key)='\($0.value)'" }.sorted().joined(separator: " ")
        let r = try Shell.run("env \(env3) '\(try vhdxBinary())' restore '\(lab.path("r.vhdx"))' s3://\(bucket)/\(key)", allowFailure: true)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try ExportLab.content(lab.path("r.vhdx")) == lab.model)
        third.stop()
    }
}

/// The CLI as a process of its own (to be killed, or waited for), its standard error in a file.
struct CLIProcess {
    let process: Process
    let errorFile: String

    func stderr() -> String { (try? String(contentsOfFile: errorFile, encoding: .utf8)) ?? "" }

    static func launch(_ arguments: [String], _ environment: [String: String]) throws -> CLIProcess {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try vhdxBinary())
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let errorFile = Fixtures.tempPath("cli-stderr-\(UUID().uuidString.prefix(8))")
        FileManager.default.createFile(atPath: errorFile, contents: nil)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle(forWritingAtPath: errorFile)
        try p.run()
        return CLIProcess(process: p, errorFile: errorFile)
    }
}
