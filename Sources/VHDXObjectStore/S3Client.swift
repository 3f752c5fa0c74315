import AsyncHTTPClient
import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore
import NIOHTTP1

/// A blocking S3 client: one method per S3 operation, callable from ordinary threads (not from
/// a NIO event loop). Requests are signed with SigV4, addressed path-style, and retried on 5xx,
/// throttling, timeouts and broken connections (`RetryPolicy`); every failure is an `S3Error`.
package final class S3Client: Sendable {
    package let configuration: S3Configuration
    let transport: Transport

    /// - Parameters:
    ///   - readTimeout: the longest silence on a connection before the attempt counts as failed.
    package init(configuration: S3Configuration, retry: RetryPolicy = .default,
                 connectTimeout: Double = 10, readTimeout: Double = 60) {
        self.configuration = configuration
        transport = Transport(configuration: configuration, retry: retry,
                              connectTimeout: .nanoseconds(Int64(connectTimeout * 1e9)),
                              readTimeout: .nanoseconds(Int64(readTimeout * 1e9)))
    }

    deinit { transport.shutdown() }

    /// Closes connections and stops the client's event loops; later calls fail. Idempotent.
    package func shutdown() { transport.shutdown() }

    package var endpoint: String { configuration.endpoint.description }

    // MARK: Objects

    /// HeadObject: the object's size and ETag. A missing bucket and a missing key are told apart
    /// (HEAD answers have no body, so a failed HEAD is repeated as a 1-byte GET to learn why).
    package func headObject(_ location: S3Location) throws(S3Error) -> ObjectInfo {
        let request = S3Request(operation: "HeadObject", method: .HEAD, bucket: location.bucket, key: location.key)
        let response: S3Response
        do {
            response = try transport.perform(request)
        } catch where error.s3Code == nil && error.status.map({ (400..<500).contains($0) }) == true {
            var probe = request
            probe.method = .GET
            probe.headers = [("Range", "bytes=0-0")]
            do {
                _ = try transport.perform(probe)
            } catch let why where why.s3Code != nil && why.code != .rejected {
                throw S3Error(why.code, operation: "HeadObject", bucket: why.bucket, key: why.key,
                              endpoint: why.endpoint, s3Code: why.s3Code, status: why.status, message: why.message)
            } catch {}
            throw error
        }
        guard let length = response.headers.first(name: "Content-Length").flatMap({ UInt64($0) }) else {
            throw S3Error(.badResponse, operation: "HeadObject", bucket: location.bucket, key: location.key,
                          endpoint: endpoint, status: response.status, message: "the answer has no Content-Length")
        }
        return ObjectInfo(size: length, etag: response.unquoted("ETag") ?? "",
                          lastModified: response.headers.first(name: "Last-Modified"))
    }

    /// GetObject: the whole object, or `range` of it (`Range: bytes=…`). With `ifMatch`, the
    /// read fails with `.objectChanged` when the object's ETag is no longer that one.
    package func getObject(_ location: S3Location, range: Range<UInt64>? = nil, ifMatch: String? = nil) throws(S3Error) -> [UInt8] {
        let response = try transport.perform(getRequest(location, range: range, ifMatch: ifMatch))
        return try checkedBody(response, location: location, range: range)
    }

    func getRequest(_ location: S3Location, range: Range<UInt64>?, ifMatch: String?) -> S3Request {
        var request = S3Request(operation: "GetObject", method: .GET, bucket: location.bucket, key: location.key)
        if let range, !range.isEmpty { request.headers.append(("Range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")) }
        if let ifMatch { request.headers.append(("If-Match", "\"\(ifMatch)\"")) }
        return request
    }

    /// The body of a GET, checked to be as long as the range asked for.
    func checkedBody(_ response: S3Response, location: S3Location, range: Range<UInt64>?) throws(S3Error) -> [UInt8] {
        var buffer = try checkedBuffer(response, location: location, range: range)
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    /// The same, without copying the body out of its buffer.
    func checkedBuffer(_ response: S3Response, location: S3Location, range: Range<UInt64>?) throws(S3Error) -> ByteBuffer {
        let body = response.body ?? ByteBuffer()
        if let range, !range.isEmpty, UInt64(body.readableBytes) != UInt64(range.count) {
            throw S3Error(.badResponse, operation: "GetObject", bucket: location.bucket, key: location.key,
                          endpoint: endpoint, status: response.status,
                          message: "asked for bytes \(range.lowerBound)-\(range.upperBound - 1) (\(range.count) bytes), got \(body.readableBytes) bytes")
        }
        return body
    }

    /// PutObject with `Content-MD5` (the server refuses a body that does not match). The object
    /// appears whole or not at all. Returns the ETag.
    @discardableResult
    package func putObject(_ location: S3Location, bytes: [UInt8]) throws(S3Error) -> String {
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        let response = try transport.perform(putRequest(location, body: buffer))
        return response.unquoted("ETag") ?? ""
    }

    func putRequest(_ location: S3Location, body: ByteBuffer) -> S3Request {
        S3Request(operation: "PutObject", method: .PUT, bucket: location.bucket, key: location.key,
                  headers: [("Content-MD5", Self.contentMD5(body))], body: body,
                  payloadHash: SigV4Signer.unsignedPayload)
    }

    /// DeleteObject (S3 answers success for a key that does not exist).
    package func deleteObject(_ location: S3Location) throws(S3Error) {
        _ = try transport.perform(S3Request(operation: "DeleteObject", method: .DELETE, bucket: location.bucket, key: location.key))
    }

    // MARK: Multipart uploads

    /// CreateMultipartUpload: the new upload's id.
    package func createMultipartUpload(_ location: S3Location) throws(S3Error) -> String {
        let request = S3Request(operation: "CreateMultipartUpload", method: .POST, bucket: location.bucket,
                                key: location.key, query: [("uploads", "")])
        let xml = try document(transport.perform(request), request)
        guard let id = xml.value("UploadId"), !id.isEmpty else { throw malformed(request, "no UploadId") }
        return id
    }

    /// UploadPart with `Content-MD5`: the part's ETag.
    package func uploadPart(_ location: S3Location, uploadID: String, number: Int, bytes: [UInt8]) throws(S3Error) -> String {
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        let response = try transport.perform(uploadPartRequest(location, uploadID: uploadID, number: number, body: buffer,
                                                               md5: Self.contentMD5(buffer)))
        return response.unquoted("ETag") ?? ""
    }

    /// Part bodies are sent as `UNSIGNED-PAYLOAD`: `Content-MD5` is a signed header and the
    /// server checks the body against it, so the body is still bound to the signature, and the
    /// SHA-256 pass over every byte that a signed payload costs is saved.
    func uploadPartRequest(_ location: S3Location, uploadID: String, number: Int, body: ByteBuffer, md5: String) -> S3Request {
        S3Request(operation: "UploadPart", method: .PUT, bucket: location.bucket, key: location.key,
                  query: [("partNumber", String(number)), ("uploadId", uploadID)],
                  headers: [("Content-MD5", md5)], body: body, payloadHash: SigV4Signer.unsignedPayload)
    }

    /// CompleteMultipartUpload: publishes the object (atomically) from `parts`; its ETag.
    @discardableResult
    package func completeMultipartUpload(_ location: S3Location, uploadID: String, parts: [CompletedPart]) throws(S3Error) -> String {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts { xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\"\(part.etag)\"</ETag></Part>" }
        xml += "</CompleteMultipartUpload>"
        let body = Array(xml.utf8)
        var buffer = ByteBuffer()
        buffer.writeBytes(body)
        let request = S3Request(operation: "CompleteMultipartUpload", method: .POST, bucket: location.bucket,
                                key: location.key, query: [("uploadId", uploadID)],
                                headers: [("Content-Type", "application/xml")], body: buffer,
                                payloadHash: SigV4Signer.hex(SHA256.hash(data: body)))
        let answer = try document(transport.perform(request), request)
        return unquote(answer.value("ETag") ?? "")
    }

    /// AbortMultipartUpload: drops the upload and its stored parts.
    package func abortMultipartUpload(_ location: S3Location, uploadID: String) throws(S3Error) {
        _ = try transport.perform(S3Request(operation: "AbortMultipartUpload", method: .DELETE, bucket: location.bucket,
                                            key: location.key, query: [("uploadId", uploadID)]))
    }

    /// ListParts: every part stored so far (all pages), by part number.
    package func listParts(_ location: S3Location, uploadID: String) throws(S3Error) -> [StoredPart] {
        var parts: [StoredPart] = []
        var marker: String?
        repeat {
            var request = S3Request(operation: "ListParts", method: .GET, bucket: location.bucket, key: location.key,
                                    query: [("uploadId", uploadID)])
            if let marker { request.query.append(("part-number-marker", marker)) }
            let xml = try document(transport.perform(request), request)
            for part in xml.all("Part") {
                guard let number = part.value("PartNumber").flatMap({ Int($0) }),
                      let size = part.value("Size").flatMap({ UInt64($0) }) else { throw malformed(request, "a Part without PartNumber or Size") }
                parts.append(StoredPart(number: number, etag: unquote(part.value("ETag") ?? ""), size: size))
            }
            let next = xml.value("NextPartNumberMarker")
            marker = xml.value("IsTruncated") == "true" && next != nil && next != marker ? next : nil
        } while marker != nil
        return parts.sorted { $0.number < $1.number }
    }

    /// ListMultipartUploads for exactly `key` (all pages), oldest first.
    package func listMultipartUploads(_ location: S3Location) throws(S3Error) -> [PendingUpload] {
        var uploads: [PendingUpload] = []
        var markers: (String, String)?
        repeat {
            var request = S3Request(operation: "ListMultipartUploads", method: .GET, bucket: location.bucket,
                                    query: [("uploads", ""), ("prefix", location.key)])
            if let markers { request.query += [("key-marker", markers.0), ("upload-id-marker", markers.1)] }
            let xml = try document(transport.perform(request), request)
            for upload in xml.all("Upload") {
                guard let key = upload.value("Key"), let id = upload.value("UploadId") else { throw malformed(request, "an Upload without Key or UploadId") }
                if key == location.key { uploads.append(PendingUpload(key: key, uploadID: id, initiated: upload.value("Initiated") ?? "")) }
            }
            if xml.value("IsTruncated") == "true", let k = xml.value("NextKeyMarker"), let u = xml.value("NextUploadIdMarker"),
               !(markers.map { $0 == (k, u) } ?? false) {
                markers = (k, u)
            } else {
                markers = nil
            }
        } while markers != nil
        return uploads.sorted { $0.initiated < $1.initiated }
    }

    // MARK: Listing and buckets

    /// One page of ListObjectsV2 under `prefix` (with `delimiter`, keys below the next
    /// delimiter are folded into `commonPrefixes`).
    package func listObjects(bucket: String, prefix: String, delimiter: String? = nil,
                             continuationToken: String? = nil, maxKeys: Int? = nil) throws(S3Error) -> ObjectPage {
        var request = S3Request(operation: "ListObjectsV2", method: .GET, bucket: bucket,
                                query: [("list-type", "2"), ("prefix", prefix)])
        if let delimiter { request.query.append(("delimiter", delimiter)) }
        if let continuationToken { request.query.append(("continuation-token", continuationToken)) }
        if let maxKeys { request.query.append(("max-keys", String(maxKeys))) }
        let xml = try document(transport.perform(request), request)
        var page = ObjectPage(objects: [], commonPrefixes: [], continuationToken: nil)
        for item in xml.all("Contents") {
            guard let key = item.value("Key"), let size = item.value("Size").flatMap({ UInt64($0) }) else {
                throw malformed(request, "a Contents entry without Key or Size")
            }
            page.objects.append(ObjectSummary(key: key, size: size, etag: unquote(item.value("ETag") ?? ""),
                                              lastModified: item.value("LastModified") ?? ""))
        }
        page.commonPrefixes = xml.all("CommonPrefixes").compactMap { $0.value("Prefix") }
        if xml.value("IsTruncated") == "true" {
            guard let next = xml.value("NextContinuationToken"), !next.isEmpty else {
                throw malformed(request, "a truncated listing without NextContinuationToken")
            }
            page.continuationToken = next
        }
        return page
    }

    /// Every page of ListObjectsV2 under `prefix`.
    package func listAllObjects(bucket: String, prefix: String, delimiter: String? = nil) throws(S3Error) -> ObjectPage {
        var all = ObjectPage(objects: [], commonPrefixes: [], continuationToken: nil)
        var token: String?
        repeat {
            let page = try listObjects(bucket: bucket, prefix: prefix, delimiter: delimiter, continuationToken: token)
            all.objects += page.objects
            all.commonPrefixes += page.commonPrefixes
            token = page.continuationToken
        } while token != nil
        return all
    }

    /// CreateBucket (tests and setup; the region's location constraint is left to the server).
    package func createBucket(_ bucket: String) throws(S3Error) {
        _ = try transport.perform(S3Request(operation: "CreateBucket", method: .PUT, bucket: bucket))
    }

    // MARK: Helpers

    /// Base64 of the body's MD5, for `Content-MD5`.
    static func contentMD5(_ body: ByteBuffer) -> String {
        Data(body.withUnsafeReadableBytes { Insecure.MD5.hash(data: $0) }).base64EncodedString()
    }

    /// The XML answer; a 200 whose body is an `<Error>` (CompleteMultipartUpload can answer so)
    /// is a failure.
    private func document(_ response: S3Response, _ request: S3Request) throws(S3Error) -> XMLElement {
        guard let xml = XMLElement.parse(response.bytes) else { throw malformed(request, "the answer is not XML") }
        if xml.name == "Error" {
            let (error, _) = Transport.classify(Transport.Failure.response(status: 500, body: response.bytes),
                                                request: request, endpoint: endpoint)
            let code: S3Error.Code = error.code == .unavailable ? .unavailable : error.code
            throw S3Error(code, operation: request.operation, bucket: request.bucket, key: request.key,
                          endpoint: endpoint, s3Code: error.s3Code, status: response.status, message: error.message)
        }
        return xml
    }

    private func malformed(_ request: S3Request, _ why: String) -> S3Error {
        S3Error(.badResponse, operation: request.operation, bucket: request.bucket, key: request.key,
                endpoint: endpoint, message: "unexpected answer: \(why)")
    }
}
