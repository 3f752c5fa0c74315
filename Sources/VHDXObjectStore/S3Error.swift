/// A failed object-storage operation: what failed (`operation`), where (bucket, key, endpoint)
/// and why (`message`, S3's own error code, the HTTP status, the last cause after retries).
package struct S3Error: Error, Sendable, CustomStringConvertible {
    /// What kind of failure, for the caller to map to exit codes.
    package enum Code: String, Sendable {
        /// A malformed URL, endpoint or configuration; missing credentials.
        case invalidArgument
        /// The bucket does not exist (S3 `NoSuchBucket`).
        case noSuchBucket
        /// The object does not exist (S3 `NoSuchKey`, or 404 on HEAD).
        case noSuchKey
        /// The multipart upload does not exist any more (aborted or completed elsewhere).
        case noSuchUpload
        /// The credentials are valid but not allowed to do this (S3 `AccessDenied`).
        case accessDenied
        /// The access key is unknown or the secret is wrong (`InvalidAccessKeyId`,
        /// `SignatureDoesNotMatch`, expired tokens).
        case badCredentials
        /// The object changed while it was read (its ETag no longer matches: `If-Match` failed).
        case objectChanged
        /// Another client error from the server (S3's code and message say which).
        case rejected
        /// The server could not be reached or kept failing (5xx, throttling, timeouts, broken
        /// connections) through every retry.
        case unavailable
        /// The server answered something this client cannot understand.
        case badResponse
    }

    package let code: Code
    /// The S3 operation (`PutObject`, `UploadPart`, …) or the local step (`parsing the URL`).
    package let operation: String
    package let bucket: String?
    package let key: String?
    package let endpoint: String?
    /// S3's error code (`NoSuchBucket`, `SlowDown`, …), when the server sent one.
    package let s3Code: String?
    /// The HTTP status of the last response, when there was one.
    package let status: Int?
    /// How many attempts were made (more than 1 after retries).
    package let attempts: Int
    /// Why, in words (S3's message, or the transport's error).
    package let message: String

    package init(_ code: Code, operation: String, bucket: String? = nil, key: String? = nil,
                 endpoint: String? = nil, s3Code: String? = nil, status: Int? = nil, attempts: Int = 1,
                 message: String) {
        self.code = code
        self.operation = operation
        self.bucket = bucket
        self.key = key
        self.endpoint = endpoint
        self.s3Code = s3Code
        self.status = status
        self.attempts = attempts
        self.message = message
    }

    /// The object or bucket is missing (a distinct exit code from other failures).
    package var isNotFound: Bool { code == .noSuchKey || code == .noSuchBucket }

    /// `s3://bucket/key`, `s3://bucket` or nil.
    package var location: String? {
        guard let bucket else { return nil }
        return "s3://\(bucket)/\(key ?? "")"
    }

    package var description: String {
        var s = ""
        if let location { s += "\(location): " }
        s += "\(operation) failed"
        if let endpoint { s += " (endpoint \(endpoint))" }
        s += ": "
        if let s3Code { s += "\(s3Code): " }
        s += message
        var notes: [String] = []
        if let status { notes.append("HTTP \(status)") }
        if attempts > 1 { notes.append("after \(attempts) attempts") }
        if !notes.isEmpty { s += " (\(notes.joined(separator: ", ")))" }
        return s
    }

    /// The same failure seen as another operation or after more attempts.
    func with(attempts: Int) -> S3Error {
        S3Error(code, operation: operation, bucket: bucket, key: key, endpoint: endpoint, s3Code: s3Code,
                status: status, attempts: attempts, message: message)
    }
}
