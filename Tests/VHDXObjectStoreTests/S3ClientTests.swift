import Crypto
import Foundation
import Testing
@testable import VHDXObjectStore
import VHDXTestSupport

/// The client's operations against a real server (SeaweedFS): round trips, listings and the
/// errors a user meets.
@Suite struct S3ClientTests {
    @Test func putHeadGetListDelete() throws {
        let server = try S3TestServer.sharedServer()
        let client = try server.client()
        let bucket = try server.freshBucket(client)
        let bytes = testBytes(300_001, seed: 1)
        let object = try S3Location(bucket: bucket, key: "vm1/full.vxs")
        let etag = try client.putObject(object, bytes: bytes)
        #expect(etag == SigV4Signer.hex(Insecure.MD5.hash(data: bytes)))

        let info = try client.headObject(object)
        #expect(info.size == UInt64(bytes.count))
        #expect(info.etag == etag)
        #expect(try client.getObject(object) == bytes)
        #expect(try client.getObject(object, range: 1000..<5000) == Array(bytes[1000..<5000]))
        #expect(try client.getObject(object, range: 299_990..<300_001, ifMatch: etag) == Array(bytes[299_990...]))

        // Listing: prefix, delimiter, pages.
        for name in ["vm1/inc1.vxs", "vm1/inc2.vxs", "vm2/full.vxs", "top.vxs"] {
            try client.putObject(try S3Location(bucket: bucket, key: name), bytes: [1, 2, 3])
        }
        let page = try client.listObjects(bucket: bucket, prefix: "vm1/", maxKeys: 2)
        #expect(page.objects.map(\.key) == ["vm1/full.vxs", "vm1/inc1.vxs"])
        #expect(page.continuationToken != nil)
        let all = try client.listAllObjects(bucket: bucket, prefix: "vm1/")
        #expect(all.objects.map(\.key) == ["vm1/full.vxs", "vm1/inc1.vxs", "vm1/inc2.vxs"])
        #expect(all.objects.first?.size == UInt64(bytes.count))
        let folders = try client.listAllObjects(bucket: bucket, prefix: "", delimiter: "/")
        #expect(folders.commonPrefixes.sorted() == ["vm1/", "vm2/"])
        #expect(folders.objects.map(\.key) == ["top.vxs"])

        try client.deleteObject(object)
        let gone = #expect(throws: S3Error.self) { try client.headObject(object) }
        #expect(gone?.code == .noSuchKey)
    }

    /// Keys with characters that URL and signature must encode alike.
    @Test func awkwardKeys() throws {
        let server = try S3TestServer.sharedServer()
        let client = try server.client()
        let bucket = try server.freshBucket(client)
        let keys = ["dir/a b+c=d&e.vxs", "dir/é~(1)!*'.vxs", "dir/%41 percent.vxs", "dir/semi;colon:at@.vxs"]
        for (i, key) in keys.enumerated() {
            let object = try S3Location(bucket: bucket, key: key)
            try client.putObject(object, bytes: [UInt8(i)])
            #expect(try client.getObject(object) == [UInt8(i)], "\(key)")
        }
        #expect(Set(try client.listAllObjects(bucket: bucket, prefix: "dir/").objects.map(\.key)) == Set(keys))
        // Page by page: continuation tokens go back through the query encoding.
        var seen: [String] = []
        var token: String?
        repeat {
            let page = try client.listObjects(bucket: bucket, prefix: "dir/", continuationToken: token, maxKeys: 1)
            seen += page.objects.map(\.key)
            token = page.continuationToken
        } while token != nil
        #expect(Set(seen) == Set(keys))
        #expect(seen.count == keys.count)
    }

    @Test func wrongCredentialsAreBadCredentials() throws {
        let server = try S3TestServer.sharedServer()
        let good = try server.client()
        let bucket = try server.freshBucket(good)
        let object = try S3Location(bucket: bucket, key: "k")
        try good.putObject(object, bytes: [1])

        let wrongSecret = try server.client(secret: "not-the-secret")
        for attempt in [{ _ = try wrongSecret.getObject(object) }, { _ = try wrongSecret.headObject(object) },
                        { _ = try wrongSecret.putObject(object, bytes: [2]) }] as [() throws -> Void] {
            let e = #expect(throws: S3Error.self) { try attempt() }
            #expect(e?.code == .badCredentials, "\(String(describing: e))")
            #expect(e?.s3Code == "SignatureDoesNotMatch")
            #expect(e?.attempts == 1, "a 4xx is not retried")
            #expect(e?.description.contains("s3://\(bucket)/k") == true)
            #expect(e?.description.contains(server.environment["AWS_ENDPOINT_URL"]!) == true)
        }
        var env = server.environment
        env["AWS_ACCESS_KEY_ID"] = "NOSUCHKEY"
        let unknown = S3Client(configuration: try S3Configuration.resolve(environment: env))
        let e = #expect(throws: S3Error.self) { try unknown.getObject(object) }
        #expect(e?.code == .badCredentials)
        #expect(e?.s3Code == "InvalidAccessKeyId")
        #expect(try good.getObject(object) == [1], "the failed PUT changed nothing")
    }

    @Test func missingBucketAndMissingKeyAreDistinct() throws {
        let server = try S3TestServer.sharedServer()
        let client = try server.client()
        let bucket = try server.freshBucket(client)

        let noBucket = try S3Location(bucket: "no-such-bucket-\(UUID().uuidString.prefix(8).lowercased())", key: "k")
        for attempt in [{ _ = try client.headObject(noBucket) }, { _ = try client.getObject(noBucket) },
                        { _ = try client.putObject(noBucket, bytes: [1]) },
                        { _ = try client.listObjects(bucket: noBucket.bucket, prefix: "") }] as [() throws -> Void] {
            let e = #expect(throws: S3Error.self) { try attempt() }
            #expect(e?.code == .noSuchBucket, "\(String(describing: e))")
            #expect(e?.isNotFound == true)
        }

        let noKey = try S3Location(bucket: bucket, key: "missing.vxs")
        for attempt in [{ _ = try client.headObject(noKey) }, { _ = try client.getObject(noKey) },
                        { _ = try ObjectReader(client: client, location: noKey) }] as [() throws -> Void] {
            let e = #expect(throws: S3Error.self) { try attempt() }
            #expect(e?.code == .noSuchKey, "\(String(describing: e))")
            #expect(e?.description.contains("s3://\(bucket)/missing.vxs") == true)
        }
    }

    /// Nothing listens: every attempt fails to connect, the error says so after the last one.
    @Test func anUnreachableServerFailsAfterRetries() throws {
        let config = S3Configuration(endpoint: try S3Endpoint(parsing: "http://127.0.0.1:1"), region: "us-east-1",
                                     credentials: S3Credentials(accessKeyID: "K", secretAccessKey: "S"))
        let client = S3Client(configuration: config, retry: RetryPolicy(maxAttempts: 3, baseDelay: 0.01, maxDelay: 0.05))
        let e = #expect(throws: S3Error.self) { try client.getObject(try S3Location(bucket: "bucket", key: "k")) }
        #expect(e?.code == .unavailable)
        #expect(e?.attempts == 3)
        #expect(e?.description.contains("GetObject failed (endpoint http://127.0.0.1:1)") == true, "\(String(describing: e))")
    }
}
