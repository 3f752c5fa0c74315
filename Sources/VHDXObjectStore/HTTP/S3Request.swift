import NIOCore
import NIOHTTP1

/// One S3 request before signing: the operation's name (for errors), what it addresses, and
/// its query, headers and body.
struct S3Request: Sendable {
    var operation: String
    var method: HTTPMethod
    var bucket: String?
    var key: String?
    var query: [(String, String)] = []
    var headers: [(String, String)] = []
    var body: ByteBuffer?
    /// The body's SHA-256 (hex), or `UNSIGNED-PAYLOAD` for part bodies (see `S3Client.putObject`).
    var payloadHash: String = SigV4Signer.emptyPayloadHash

    /// `/BUCKET/KEY` (path-style), before percent-encoding.
    var path: String {
        guard let bucket else { return "/" }
        guard let key else { return "/\(bucket)" }
        return "/\(bucket)/\(key)"
    }
}

/// A response with a 2xx status (failures become `S3Error`s).
struct S3Response: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: ByteBuffer?

    var bytes: [UInt8] {
        guard var body else { return [] }
        return body.readBytes(length: body.readableBytes) ?? []
    }

    /// A header's value without surrounding quotes (ETags are quoted).
    func unquoted(_ name: String) -> String? {
        headers.first(name: name).map(unquote)
    }
}

/// `"abc"` -> `abc` (ETags come quoted, and some servers quote inconsistently).
func unquote(_ s: String) -> String {
    var t = Substring(s.trimmingWhitespace())
    if t.hasPrefix("W/") { t = t.dropFirst(2) }
    if t.hasPrefix("\"") { t = t.dropFirst() }
    if t.hasSuffix("\"") { t = t.dropLast() }
    return String(t)
}
