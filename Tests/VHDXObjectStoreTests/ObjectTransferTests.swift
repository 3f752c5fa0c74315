import Foundation
import Testing
@testable import VHDXObjectStore
import VHDXTestSupport

/// Multipart uploads and ranged reads against a real server, checked with the AWS CLI.
@Suite struct ObjectTransferTests {
    static let mib = 1 << 20

    /// Appends `bytes` in uneven pieces.
    func append(_ bytes: [UInt8], to upload: ObjectUpload, piece: Int = 100_003) throws {
        var i = 0
        while i < bytes.count {
            let n = min(piece, bytes.count - i)
            try upload.append(Array(bytes[i..<(i + n)]))
            i += n
        }
    }

    /// The shared server's client and `key` in a fresh bucket.
    static func freshObject(_ key: String) throws -> (client: S3Client, object: S3Location) {
        let server = try S3TestServer.sharedServer()
        let client = try server.client()
        return (client, try S3Location(bucket: try server.freshBucket(client), key: key))
    }

    func temporaryFile() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("vhdx-s3-\(UUID().uuidString)")
    }

    @Test func multipartUploadEqualsWhatTheAWSCLIDownloads() throws {
        let server = try S3TestServer.sharedServer()
        let client = try server.client()
        let bucket = try server.freshBucket(client)
        let object = try S3Location(bucket: bucket, key: "vm1/full.vxs")
        let bytes = testBytes(40 * Self.mib + 12_345, seed: 2)

        let upload = try ObjectUpload(client: client, location: object, partSize: 5 * Self.mib, concurrency: 3)
        try append(bytes, to: upload)
        // Not published before complete(): no object, nothing listed.
        #expect(throws: S3Error.self) { try client.headObject(object) }
        #expect(try client.listAllObjects(bucket: bucket, prefix: "").objects.isEmpty)
        try upload.complete()
        #expect(upload.partsSent == 9)
        #expect(upload.uploadID != nil)
        #expect(try client.listMultipartUploads(object).isEmpty)

        let file = temporaryFile()
        defer { try? FileManager.default.removeItem(at: file) }
        try server.aws(["s3", "cp", "--only-show-errors", object.description, file.path])
        #expect(try Data(contentsOf: file) == Data(bytes))

        let reader = try ObjectReader(client: client, location: object, chunkSize: 3 * Self.mib, readAhead: 3)
        #expect(reader.size == UInt64(bytes.count))
        var back: [UInt8] = []
        while true {
            let piece = try reader.read(777_777)
            if piece.isEmpty { break }
            #expect(piece.count == 777_777 || reader.position == reader.size)
            back += piece
        }
        #expect(back == bytes)
    }

    @Test func whatTheAWSCLIUploadsReadsBack() throws {
        let server = try S3TestServer.sharedServer()
        let client = try server.client()
        let bucket = try server.freshBucket(client)
        let object = try S3Location(bucket: bucket, key: "from-aws.vxs")
        // Above the CLI's 8 MiB threshold: it uploads in parts too.
        let bytes = testBytes(20 * Self.mib + 99, seed: 3)
        let file = temporaryFile()
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(bytes).write(to: file)
        try server.aws(["s3", "cp", "--only-show-errors", file.path, object.description])

        let reader = try ObjectReader(client: client, location: object, chunkSize: Self.mib, readAhead: 4)
        #expect(reader.size == UInt64(bytes.count))
        #expect(reader.etag.hasSuffix("-3"), "the CLI uploaded 3 parts of 8 MiB: \(reader.etag)")
        // Header and trailer probes, then the whole stream in uneven reads.
        #expect(try reader.read(range: 0..<4096) == Array(bytes[0..<4096]))
        #expect(try reader.read(range: UInt64(bytes.count - 65536)..<UInt64(bytes.count)) == Array(bytes[(bytes.count - 65536)...]))
        #expect(throws: S3Error.self) { try reader.read(range: 0..<UInt64(bytes.count + 1)) }
        var back: [UInt8] = []
        var sizes = [1, 4095, Self.mib, 3 * Self.mib + 7, 1]
        while true {
            let want = sizes.isEmpty ? 5 * Self.mib : sizes.removeFirst()
            let piece = try reader.read(want)
            if piece.isEmpty { break }
            back += piece
        }
        #expect(back == bytes)
        #expect(try reader.read(10).isEmpty)
    }

    @Test func smallStreamsAreOnePutAndEmptyOnesWork() throws {
        let server = try S3TestServer.sharedServer()
        let client = try server.client()
        let bucket = try server.freshBucket(client)
        let small = try S3Location(bucket: bucket, key: "small.vxs")
        let bytes = testBytes(1000, seed: 4)
        let upload = try ObjectUpload(client: client, location: small, partSize: 5 * Self.mib)
        try upload.append(bytes)
        #expect(throws: S3Error.self) { try client.headObject(small) }
        try upload.complete()
        #expect(upload.uploadID == nil)
        #expect(try client.getObject(small) == bytes)
        #expect(throws: S3Error.self) { try upload.append([1]) }

        let empty = try S3Location(bucket: bucket, key: "empty.vxs")
        try ObjectUpload(client: client, location: empty).complete()
        #expect(try client.headObject(empty).size == 0)
        let reader = try ObjectReader(client: client, location: empty)
        #expect(try reader.read(100).isEmpty)
    }

    @Test func abortLeavesNoObjectAndNoPendingUpload() throws {
        let (client, object) = try Self.freshObject("aborted.vxs")
        let upload = try ObjectUpload(client: client, location: object, partSize: 5 * Self.mib)
        try append(testBytes(12 * Self.mib, seed: 5), to: upload)
        #expect(try client.listMultipartUploads(object).count == 1)
        try upload.abort()
        #expect(throws: S3Error.self) { try client.headObject(object) }
        #expect(try client.listMultipartUploads(object).isEmpty)
        #expect(throws: S3Error.self) { try upload.complete() }
    }

    /// A run that died (no complete, no abort) left parts behind: the re-run with the same
    /// bytes keeps them, sends only the rest, and aborts a stale upload of other bytes.
    @Test func aReRunResumesFromTheStoredParts() throws {
        let (client, object) = try Self.freshObject("resumed.vxs")
        let part = 5 * Self.mib
        let bytes = testBytes(6 * part + 1234, seed: 6)

        // A stale upload of other content under the same key.
        let stale = try ObjectUpload(client: client, location: object, partSize: part)
        try append(testBytes(part + 1, seed: 99), to: stale)
        // The interrupted run: 4 parts cut and sent, then it stops (dropped, never completed).
        do {
            let first = try ObjectUpload(client: client, location: object, partSize: part)
            try append(Array(bytes[0..<(4 * part + 10)]), to: first)
            #expect(first.partsSent == 4)
        }
        // Its parts land (they were in flight when it stopped).
        let pending = try client.listMultipartUploads(object)
        #expect(pending.count == 2)
        let deadline = Date().addingTimeInterval(30)
        while try pending.map({ try client.listParts(object, uploadID: $0.uploadID).count }).max() ?? 0 < 4, Date() < deadline {
            usleep(100_000)
        }

        let rerun = try ObjectUpload(client: client, location: object, partSize: part)
        try append(bytes, to: rerun)
        try rerun.complete()
        #expect(rerun.partsReused == 4)
        #expect(rerun.partsSent == 3)
        #expect(try client.getObject(object) == bytes)
        #expect(try client.listMultipartUploads(object).isEmpty, "the stale upload was aborted")
    }

    /// Part 2 differs in the re-run: parts 1 and 3 are kept, part 2 is sent again.
    @Test func onlyIdenticalPartsAreKept() throws {
        let (client, object) = try Self.freshObject("changed.vxs")
        let part = 5 * Self.mib
        var bytes = testBytes(3 * part + 5, seed: 7)
        let first = try ObjectUpload(client: client, location: object, partSize: part, concurrency: 1)
        try append(Array(bytes[0..<(3 * part + 1)]), to: first)
        let id = try #require(first.uploadID)
        let deadline = Date().addingTimeInterval(30)
        while try client.listParts(object, uploadID: id).count < 3, Date() < deadline { usleep(100_000) }

        bytes[part + 17] ^= 0xFF
        let rerun = try ObjectUpload(client: client, location: object, partSize: part)
        try append(bytes, to: rerun)
        try rerun.complete()
        #expect(rerun.uploadID == id)
        #expect(rerun.partsReused == 2)
        #expect(rerun.partsSent == 2)
        #expect(try client.getObject(object) == bytes)
    }

    /// A writer whose first part differs on every run (an export's header) begins by continuing
    /// the newest pending upload: the same upload id, and every later part that did not change
    /// is kept. Without it, the re-run would match nothing (part 1 differs) and send every part.
    @Test func aWriterWithANewFirstPartContinuesTheNewestUpload() throws {
        let (client, object) = try Self.freshObject("continued.vxs")
        let part = 5 * Self.mib
        var bytes = testBytes(4 * part + 77, seed: 8)
        let id: String
        do {
            let first = try ObjectUpload(client: client, location: object, partSize: part, concurrency: 1)
            id = try first.beginContinuingNewest()
            try append(Array(bytes[0..<(3 * part + 1)]), to: first)
            #expect(first.partsSent == 3)
        }
        let deadline = Date().addingTimeInterval(30)
        while ((try? client.listParts(object, uploadID: id))?.count ?? 0) < 3, Date() < deadline { usleep(100_000) }

        bytes[9] ^= 0xFF  // the "header" of the re-run differs
        let rerun = try ObjectUpload(client: client, location: object, partSize: part)
        #expect(try rerun.beginContinuingNewest() == id)
        #expect(rerun.partsFound == 3)
        try append(bytes, to: rerun)
        try rerun.complete()
        #expect(rerun.partsReused == 2, "parts 2 and 3 are the same bytes")
        #expect(rerun.partsSent == 3, "part 1 (changed), 4 and 5 (new)")
        #expect(try client.getObject(object) == bytes)
        #expect(try client.listMultipartUploads(object).isEmpty)
    }

    @Test func anUploadIntoAMissingBucketFailsClearly() throws {
        let server = try S3TestServer.sharedServer()
        let client = try server.client()
        let object = try S3Location(bucket: "no-bucket-\(UUID().uuidString.prefix(8).lowercased())", key: "k.vxs")
        let upload = try ObjectUpload(client: client, location: object, partSize: 5 * Self.mib)
        let e = #expect(throws: S3Error.self) { try append(testBytes(6 * Self.mib, seed: 8), to: upload) }
        #expect(e?.code == .noSuchBucket)
        #expect(e?.attempts == 1)
        // The failure sticks: later calls report it again.
        let again = #expect(throws: S3Error.self) { try upload.complete() }
        #expect(again?.code == .noSuchBucket)
    }

    @Test func anObjectReplacedMidReadIsAnError() throws {
        let server = try S3TestServer.sharedServer()
        let client = try server.client()
        let bucket = try server.freshBucket(client)
        let object = try S3Location(bucket: bucket, key: "replaced.vxs")
        try client.putObject(object, bytes: testBytes(3 * Self.mib, seed: 9))
        let reader = try ObjectReader(client: client, location: object, chunkSize: Self.mib, readAhead: 1)
        _ = try reader.read(10)
        try client.putObject(object, bytes: testBytes(3 * Self.mib, seed: 10))
        let e = #expect(throws: S3Error.self) { while try !reader.read(Self.mib).isEmpty {} }
        #expect(e?.code == .objectChanged, "\(String(describing: e))")
        #expect(e?.description.contains("replaced while it was read") == true)
        #expect(throws: S3Error.self) { try reader.read(range: 0..<10) }
    }
}

/// The server stops in the middle of an upload: the upload fails after its retries with a
/// clear error, nothing is published; once the server is back, the next run succeeds.
@Suite(.serialized) struct ServerOutageTests {
    @Test func theServerStoppedMidUpload() throws {
        let server = try S3TestServer.start()
        var stopped = false
        defer { if !stopped { server.stop() } }
        let client = try server.client()
        let bucket = try server.freshBucket(client)
        let object = try S3Location(bucket: bucket, key: "outage.vxs")
        let part = 5 << 20
        let bytes = testBytes(8 * part, seed: 11)

        let upload = try ObjectUpload(client: client, location: object, partSize: part, concurrency: 2)
        try upload.append(Array(bytes[0..<(2 * part)]))
        // Parts 1 and 2 stored, then the server goes away.
        let id = try #require(upload.uploadID)
        let deadline = Date().addingTimeInterval(30)
        while try client.listParts(object, uploadID: id).count < 2, Date() < deadline { usleep(100_000) }
        server.stop()
        stopped = true
        let e = #expect(throws: S3Error.self) {
            try upload.append(Array(bytes[(2 * part)...]))
            try upload.complete()
        }
        #expect(e?.code == .unavailable, "\(String(describing: e))")
        #expect(e?.attempts == 3)
        #expect(e?.description.contains("s3://\(bucket)/outage.vxs") == true)

        let back = try server.restarted()
        defer {
            back.stop()
            try? FileManager.default.removeItem(atPath: back.directory)
        }
        // Patient retries: the restarted server may take a moment before it accepts writes.
        let again = try back.client(retry: .default)
        let gone = #expect(throws: S3Error.self) { try again.headObject(object) }
        #expect(gone?.code == .noSuchKey, "nothing was published: \(String(describing: gone))")

        let rerun = try ObjectUpload(client: again, location: object, partSize: part)
        try rerun.append(bytes)
        try rerun.complete()
        #expect(try again.getObject(object) == bytes)
        // The parts stored before the outage were kept (the abort could not reach the server).
        #expect(rerun.partsReused == 2)
    }
}
