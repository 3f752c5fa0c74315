/// What HEAD says of an object.
package struct ObjectInfo: Sendable, Equatable {
    package let size: UInt64
    /// Without quotes. For a single PUT of an unencrypted object, the MD5 of its bytes; for a
    /// multipart upload, `MD5(part MD5s)-PARTS`.
    package let etag: String
    /// As the server wrote it (`Last-Modified`), for display.
    package let lastModified: String?
}

/// A part already stored in a pending multipart upload (ListParts).
package struct StoredPart: Sendable, Equatable {
    package let number: Int
    package let etag: String
    package let size: UInt64
}

/// A multipart upload begun and neither completed nor aborted (ListMultipartUploads).
package struct PendingUpload: Sendable, Equatable {
    package let key: String
    package let uploadID: String
    /// ISO 8601, as the server wrote it (sorts by time).
    package let initiated: String
}

/// One object in a listing.
package struct ObjectSummary: Sendable, Equatable {
    package let key: String
    package let size: UInt64
    package let etag: String
    package let lastModified: String
}

/// One page of ListObjectsV2.
package struct ObjectPage: Sendable {
    package var objects: [ObjectSummary]
    /// With a delimiter: the "folders" (`PREFIX/…/`) directly below the prefix.
    package var commonPrefixes: [String]
    /// Pass to the next call for the next page; nil on the last page.
    package var continuationToken: String?
}

/// A part to publish with CompleteMultipartUpload.
package struct CompletedPart: Sendable, Equatable {
    package let number: Int
    package let etag: String
    package init(number: Int, etag: String) {
        self.number = number
        self.etag = etag
    }
}
