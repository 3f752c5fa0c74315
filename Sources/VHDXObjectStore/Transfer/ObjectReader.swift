import NIOCore

/// A blocking sequential reader of one object: ranged GETs of `chunkSize` bytes run ahead of
/// the reader (`readAhead` of them in flight), so memory stays bounded (about `(readAhead + 1)
/// × chunkSize`). Every GET carries `If-Match` with the ETag that HEAD saw at open: an object
/// replaced mid-read fails with `.objectChanged` instead of mixing two objects' bytes.
///
/// Not thread-safe: one thread reads at a time. Call from ordinary threads, not event loops.
package final class ObjectReader {
    package let location: S3Location
    /// The object's size and ETag when it was opened.
    package let size: UInt64
    package let etag: String
    /// The next byte `read(_:)` returns.
    package private(set) var position: UInt64 = 0
    package let chunkSize: Int
    package let readAhead: Int

    private let client: S3Client
    /// Chunk index -> its GET in flight (or done).
    private var pending: [UInt64: EventLoopFuture<S3Response>] = [:]
    private var nextToRequest: UInt64 = 0
    private var current: (index: UInt64, bytes: ByteBuffer)?
    private var failure: S3Error?

    /// HEADs the object (missing bucket or key fail here, distinctly).
    package init(client: S3Client, location: S3Location, chunkSize: Int = 8 << 20, readAhead: Int = 4) throws(S3Error) {
        self.client = client
        self.location = try location.requireObject()
        self.chunkSize = max(1, chunkSize)
        self.readAhead = max(1, readAhead)
        let info = try client.headObject(location)
        size = info.size
        etag = info.etag
    }

    deinit {
        // Let GETs still in flight finish on their own; nothing waits for them.
        pending.removeAll()
    }

    private var chunkCount: UInt64 { (size + UInt64(chunkSize) - 1) / UInt64(chunkSize) }

    private func range(ofChunk index: UInt64) -> Range<UInt64> {
        let start = index * UInt64(chunkSize)
        return start..<min(size, start + UInt64(chunkSize))
    }

    /// The next `count` bytes: exactly `count`, fewer only at the end of the object (none there).
    package func read(_ count: Int) throws(S3Error) -> [UInt8] {
        if let failure { throw failure }
        let total = Int(min(UInt64(max(0, count)), size - position))
        guard total > 0 else { return [] }
        // Filled straight from the chunks' buffers (one copy of each byte).
        var failed: S3Error?
        let out = [UInt8](unsafeUninitializedCapacity: total) { out, done in
            done = 0
            do throws(S3Error) {
                while done < total { done += try copyNext(into: UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: out[done...]))) }
            } catch {
                failed = error
            }
        }
        if let failed { throw failed }
        return out
    }

    /// Copies the next bytes of the current chunk (fetching it first) into `target`; the count.
    private func copyNext(into target: UnsafeMutableRawBufferPointer) throws(S3Error) -> Int {
        let index = position / UInt64(chunkSize)
        let bytes: ByteBuffer
        if let current, current.index == index {
            bytes = current.bytes
        } else {
            do {
                bytes = try chunk(index)
            } catch {
                failure = error
                throw error
            }
            current = (index, bytes)
        }
        let offset = Int(position - index * UInt64(chunkSize))
        let take = min(target.count, bytes.readableBytes - offset)
        bytes.withUnsafeReadableBytes { source in
            target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + take)]))
        }
        position += UInt64(take)
        return take
    }

    /// `range` of the object in one GET (header and trailer probes), apart from the sequential
    /// read-ahead. The range must lie within the object.
    package func read(range: Range<UInt64>) throws(S3Error) -> [UInt8] {
        guard range.upperBound <= size else {
            throw S3Error(.invalidArgument, operation: "GetObject", bucket: location.bucket, key: location.key,
                          message: "bytes \(range.lowerBound)..<\(range.upperBound) lie past the object's end (\(size) bytes)")
        }
        if range.isEmpty { return [] }
        let response = try client.transport.perform(client.getRequest(location, range: range, ifMatch: etag))
        try checkETag(response)
        return try client.checkedBody(response, location: location, range: range)
    }

    /// Chunk `index`, requesting it and the next ones (up to `readAhead`) when not yet asked for.
    private func chunk(_ index: UInt64) throws(S3Error) -> ByteBuffer {
        if nextToRequest < index { nextToRequest = index }
        // Drop what lies behind (a caller that skipped ahead).
        for old in pending.keys where old < index { pending[old] = nil }
        while nextToRequest < chunkCount && nextToRequest < index + UInt64(readAhead) {
            let request = client.getRequest(location, range: range(ofChunk: nextToRequest), ifMatch: etag)
            pending[nextToRequest] = client.transport.send(request)
            nextToRequest += 1
        }
        guard let future = pending.removeValue(forKey: index) else {
            throw S3Error(.invalidArgument, operation: "GetObject", bucket: location.bucket, key: location.key,
                          message: "chunk \(index) was not requested")
        }
        let response: S3Response
        do {
            response = try future.wait()
        } catch let error as S3Error {
            throw changed(error)
        } catch {
            throw S3Error(.unavailable, operation: "GetObject", bucket: location.bucket, key: location.key,
                          endpoint: client.endpoint, message: "\(error)")
        }
        try checkETag(response)
        return try client.checkedBuffer(response, location: location, range: range(ofChunk: index))
    }

    /// A server that ignores `If-Match` still names the ETag of what it sent.
    private func checkETag(_ response: S3Response) throws(S3Error) {
        if let sent = response.unquoted("ETag"), !sent.isEmpty, !etag.isEmpty, sent != etag {
            throw changedError(status: response.status)
        }
    }

    private func changed(_ error: S3Error) -> S3Error {
        error.code == .objectChanged ? changedError(status: error.status) : error
    }

    private func changedError(status: Int?) -> S3Error {
        S3Error(.objectChanged, operation: "GetObject", bucket: location.bucket, key: location.key,
                endpoint: client.endpoint, s3Code: "PreconditionFailed", status: status,
                message: "the object was replaced while it was read (its ETag is no longer \(etag)); read it again")
    }
}
