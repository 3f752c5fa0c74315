import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore

/// A blocking sequential writer of one object. Bytes appended are cut into parts (see
/// `PartSizing`) that upload on several connections while the caller goes on appending; at
/// most `maxInFlight` parts are in flight, so memory stays bounded (about `(maxInFlight + 1) ×
/// part size`). Nothing is visible under the key until `complete()` (CompleteMultipartUpload,
/// or one PutObject for a stream smaller than one part): a failed or abandoned upload never
/// leaves a half object.
///
/// Resume: when the key already has a pending multipart upload whose first part equals this
/// stream's first part (size and MD5), that upload is continued, and every part whose size
/// and ETag (the MD5 of its bytes) equal the part at hand is kept instead of sent again. The
/// other pending uploads of the key (other content) are aborted once this one completes. A
/// writer whose first part differs on every run calls `beginContinuingNewest()` first instead.
/// One writer per key: two runs uploading to one key at once may continue the same upload.
///
/// Not thread-safe: one thread appends at a time. Call from ordinary threads, not event loops.
package final class ObjectUpload {
    package let location: S3Location
    package let sizing: PartSizing
    /// Parts uploading at once, at most.
    package let maxInFlight: Int
    package let resume: Bool

    /// Bytes appended so far.
    package private(set) var bytesAppended: UInt64 = 0
    /// Parts sent to the server / kept from an earlier run's pending upload.
    package private(set) var partsSent = 0
    package private(set) var partsReused = 0
    /// The multipart upload's id once it has begun (nil for a single PUT).
    package private(set) var uploadID: String?
    /// Parts an earlier run had stored in the upload this one continues.
    package var partsFound: Int { stored.count }

    private let client: S3Client
    private var buffer: ByteBuffer
    private var partsCut = 0
    private var stored: [Int: StoredPart] = [:]
    private var stale: [PendingUpload] = []
    private var inFlight: [(number: Int, md5: String, future: EventLoopFuture<S3Response>)] = []
    private var completed: [CompletedPart] = []
    private var partDigests: [Insecure.MD5Digest] = []
    private var state: State = .open

    private enum State { case open, completed, aborted, failed(S3Error) }

    /// - Parameters:
    ///   - partSize: the size of the first parts (S3 requires at least 5 MiB but for the last).
    ///   - expectedSize: the stream's size if known, so parts are large enough for 10,000.
    ///   - concurrency: parts uploading at once (default: the cores, at least 4, at most 16),
    ///     lowered to fit `memoryBudget`.
    ///   - memoryBudget: bytes of parts in flight, at most (64 MiB by default).
    ///   - resume: continue a pending upload of the same bytes (see the type's comment).
    package init(client: S3Client, location: S3Location, partSize: Int = PartSizing.defaultPartSize,
                 expectedSize: UInt64? = nil, concurrency: Int? = nil, memoryBudget: Int = 64 << 20,
                 resume: Bool = true) throws(S3Error) {
        self.client = client
        self.location = try location.requireObject()
        sizing = PartSizing(partSize: partSize, expectedSize: expectedSize)
        let wanted = concurrency ?? min(16, max(4, ProcessInfo.processInfo.activeProcessorCount))
        maxInFlight = max(1, min(wanted, memoryBudget / sizing.base))
        self.resume = resume
        buffer = ByteBufferAllocator().buffer(capacity: sizing.size(ofPart: 1))
    }

    package func append(_ bytes: [UInt8]) throws(S3Error) {
        var failure: S3Error?
        bytes.withUnsafeBytes { raw in
            do throws(S3Error) { try append(raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Buffers `bytes`; blocks while the parts in flight are at their limit. Throws the first
    /// failure of any part (the upload is then aborted).
    package func append(_ bytes: UnsafeRawBufferPointer) throws(S3Error) {
        try checkOpen("append")
        var rest = bytes
        while !rest.isEmpty {
            let room = sizing.size(ofPart: partsCut + 1) - buffer.readableBytes
            let take = min(room, rest.count)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: rest[..<take]))
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
            bytesAppended += UInt64(take)
            if buffer.readableBytes == sizing.size(ofPart: partsCut + 1) {
                try guarded { () throws(S3Error) in try cutPart() }
            }
        }
    }

    /// Publishes the object: the last part, then CompleteMultipartUpload (or one PutObject
    /// when the stream is smaller than a part). Returns the object's ETag.
    @discardableResult
    package func complete() throws(S3Error) -> String {
        try checkOpen("complete")
        return try guarded { () throws(S3Error) -> String in
            if uploadID == nil && partsCut == 0 {
                let etag = try client.transport.perform(client.putRequest(location, body: buffer)).unquoted("ETag") ?? ""
                partsSent = 1
                state = .completed
                if resume { abortQuietly((try? client.listMultipartUploads(location)) ?? []) }
                return etag
            }
            if buffer.readableBytes > 0 { try cutPart() }
            while !inFlight.isEmpty { try finishOldest() }
            let parts = completed.sorted { $0.number < $1.number }
            let etag: String
            do throws(S3Error) {
                etag = try client.completeMultipartUpload(location, uploadID: uploadID!, parts: parts)
            } catch where error.code == .noSuchUpload {
                // A retried Complete whose first attempt did succeed (its answer was lost) finds
                // the upload gone: the object, if it is ours, has the multipart ETag of our parts.
                guard let info = try? client.headObject(location), info.size == bytesAppended,
                      info.etag == expectedETag() else { throw error }
                etag = info.etag
            }
            state = .completed
            abortQuietly(stale)
            return etag
        }
    }

    /// Abandons the upload: waits for the parts in flight, then aborts the multipart upload
    /// (its stored parts are dropped). Nothing was published. Idempotent; after a failure of
    /// the upload itself, nothing more is done (the failure already aborted it, or left it for
    /// a re-run to continue when the server could not be reached).
    package func abort() throws(S3Error) {
        switch state {
        case .completed, .aborted, .failed: return
        case .open: break
        }
        state = .aborted
        drainQuietly()
        if let uploadID { try client.abortMultipartUpload(location, uploadID: uploadID) }
    }

    /// S3's ETag of a multipart object: MD5 of the parts' binary MD5s, a dash, the part count.
    private func expectedETag() -> String {
        var joined = [UInt8]()
        for digest in partDigests { joined += Array(digest) }
        return SigV4Signer.hex(Insecure.MD5.hash(data: joined)) + "-\(partDigests.count)"
    }

    /// Begins the upload before any byte is appended: continues the newest pending multipart
    /// upload of the key whatever its first part holds, or starts one. Parts are still kept only
    /// where size and MD5 equal the part at hand. For a writer whose first bytes differ on every
    /// run (a header with a time and a fresh id) but whose later bytes repeat, like an export run
    /// again after it was killed. Returns the upload's id: the same on every re-run of an
    /// interrupted upload, so the writer may derive its own ids from it.
    package func beginContinuingNewest() throws(S3Error) -> String {
        try checkOpen("begin")
        return try guarded { () throws(S3Error) -> String in
            // Any pending upload: the first part is expected to differ.
            try begin { _ in true }
        }
    }

    // MARK: Parts

    private func cutPart() throws(S3Error) {
        let number = partsCut + 1
        if uploadID == nil { try begin() }
        let body = buffer
        partsCut = number
        buffer = ByteBufferAllocator().buffer(capacity: sizing.size(ofPart: number + 1))
        let digest = body.withUnsafeReadableBytes { Insecure.MD5.hash(data: $0) }
        partDigests.append(digest)
        let md5Hex = SigV4Signer.hex(digest)
        if let kept = stored[number], kept.size == UInt64(body.readableBytes), kept.etag == md5Hex {
            completed.append(CompletedPart(number: number, etag: kept.etag))
            partsReused += 1
            return
        }
        while inFlight.count >= maxInFlight { try finishOldest() }
        let request = client.uploadPartRequest(location, uploadID: uploadID!, number: number, body: body,
                                               md5: Data(digest).base64EncodedString())
        inFlight.append((number, md5Hex, client.transport.send(request)))
        partsSent += 1
    }

    /// Waits for the oldest part in flight and records its ETag.
    private func finishOldest() throws(S3Error) {
        let (number, md5, future) = inFlight.removeFirst()
        let response: S3Response
        do {
            response = try future.wait()
        } catch let error as S3Error {
            throw error
        } catch {
            throw S3Error(.unavailable, operation: "UploadPart", bucket: location.bucket, key: location.key,
                          endpoint: client.endpoint, message: "part \(number): \(error)")
        }
        completed.append(CompletedPart(number: number, etag: response.unquoted("ETag") ?? md5))
    }

    /// Starts the multipart upload, or continues a pending one whose first part is this
    /// stream's first part.
    private func begin() throws(S3Error) {
        let first = buffer.withUnsafeReadableBytes { SigV4Signer.hex(Insecure.MD5.hash(data: $0)) }
        let size = UInt64(buffer.readableBytes)
        try begin { parts in parts.contains { $0.number == 1 && $0.size == size && $0.etag == first } }
    }

    /// Continues the newest pending upload of the key whose stored parts `accept` takes (the
    /// newest got furthest, most likely; one whose parts cannot be listed is passed over), or
    /// starts a new one. The key's other pending uploads are aborted once this one completes.
    @discardableResult
    private func begin(accepting accept: ([StoredPart]) -> Bool) throws(S3Error) -> String {
        if let uploadID { return uploadID }
        if resume {
            let pending = try client.listMultipartUploads(location)
            for upload in pending.reversed() {
                guard let parts = try? client.listParts(location, uploadID: upload.uploadID), accept(parts) else { continue }
                uploadID = upload.uploadID
                stored = Dictionary(parts.map { ($0.number, $0) }, uniquingKeysWith: { a, _ in a })
                break
            }
            stale = pending.filter { $0.uploadID != uploadID }
        }
        if let uploadID { return uploadID }
        let id = try client.createMultipartUpload(location)
        uploadID = id
        return id
    }

    // MARK: Failure

    private func checkOpen(_ what: String) throws(S3Error) {
        switch state {
        case .open: return
        case .failed(let error): throw error
        case .completed:
            throw S3Error(.invalidArgument, operation: what, bucket: location.bucket, key: location.key,
                          message: "the upload is already complete")
        case .aborted:
            throw S3Error(.invalidArgument, operation: what, bucket: location.bucket, key: location.key,
                          message: "the upload was aborted")
        }
    }

    /// Runs `body`; on failure, remembers the error and aborts the upload (best effort), unless
    /// the server could not be reached even after the retries: then an abort would only wait
    /// out the same retries again, and the stored parts are what a re-run continues from.
    private func guarded<T>(_ body: () throws(S3Error) -> T) throws(S3Error) -> T {
        do {
            return try body()
        } catch {
            state = .failed(error)
            drainQuietly()
            if error.code != .unavailable, let uploadID { try? client.abortMultipartUpload(location, uploadID: uploadID) }
            throw error
        }
    }

    private func drainQuietly() {
        for part in inFlight { _ = try? part.future.wait() }
        inFlight.removeAll()
    }

    private func abortQuietly(_ uploads: [PendingUpload]) {
        for upload in uploads where upload.uploadID != uploadID {
            try? client.abortMultipartUpload(location, uploadID: upload.uploadID)
        }
    }
}
