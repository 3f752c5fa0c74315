import Crypto

/// AWS Signature Version 4 (header form), written from AWS's specification: the canonical
/// request, the string to sign, the derived signing key and the `Authorization` header.
///
/// The path is signed as sent, encoded once and never normalized: that is S3's rule (a key may
/// hold `//` or `/./`), and the test suite's "unnormalized" cases check it.
package struct SigV4Signer: Sendable {
    package let credentials: S3Credentials
    package let region: String
    package let service: String

    /// The payload hash S3 accepts instead of the body's SHA-256.
    package static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// SHA-256 of the empty string.
    package static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    package init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// What a signature was computed from (the test vectors compare each step).
    package struct Signature: Sendable {
        package let canonicalRequest: String
        package let stringToSign: String
        package let signature: String
        package let authorization: String
        /// The headers to send: the request's, plus `X-Amz-Date`, `X-Amz-Security-Token` and
        /// (when asked) `X-Amz-Content-Sha256`, plus `Authorization`.
        package let headers: [(String, String)]
    }

    /// Signs a request.
    /// - Parameters:
    ///   - path: the path as sent, before percent-encoding (`/bucket/key`).
    ///   - query: the query's names and values, before percent-encoding.
    ///   - headers: every header that will be sent and should be signed (`Host` included).
    ///   - payloadHash: the body's SHA-256 in hex, or `UNSIGNED-PAYLOAD`.
    ///   - date: seconds since 1970 (UTC).
    ///   - sendContentHash: add `X-Amz-Content-Sha256` (S3 requires it; generic services do not).
    package func sign(method: String, path: String, query: [(String, String)], headers: [(String, String)],
                      payloadHash: String, date: Int64, sendContentHash: Bool = true) -> Signature {
        let (amzDate, day) = Self.timestamps(date)
        var all = headers
        all.append(("X-Amz-Date", amzDate))
        if sendContentHash { all.append(("X-Amz-Content-Sha256", payloadHash)) }
        if let token = credentials.sessionToken { all.append(("X-Amz-Security-Token", token)) }

        // Canonical headers: lower-case names, sorted; values trimmed with inner runs of
        // whitespace folded to one space; repeated names joined by commas in order.
        var grouped: [String: [String]] = [:]
        for (name, value) in all { grouped[name.lowercased(), default: []].append(Self.foldWhitespace(value)) }
        let names = grouped.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(grouped[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")

        let canonicalQuery = query
            .map { (Self.uriEncode($0.0, keepSlash: false), Self.uriEncode($0.1, keepSlash: false)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")

        let canonicalRequest = [method, Self.uriEncode(path, keepSlash: true), canonicalQuery,
                                canonicalHeaders, signedHeaders, payloadHash].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope,
                            Self.hex(SHA256.hash(data: Array(canonicalRequest.utf8)))].joined(separator: "\n")

        var key = SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        all.append(("Authorization", authorization))
        return Signature(canonicalRequest: canonicalRequest, stringToSign: stringToSign,
                         signature: signature, authorization: authorization, headers: all)
    }

    /// RFC 3986 percent-encoding as SigV4 specifies it: every byte but the unreserved characters
    /// (A-Z a-z 0-9 - . _ ~), and '/' when `keepSlash`, becomes %XX (upper-case hex).
    package static func uriEncode(_ s: String, keepSlash: Bool) -> String {
        var out = [UInt8]()
        out.reserveCapacity(s.utf8.count)
        let hexDigits = Array("0123456789ABCDEF".utf8)
        for c in s.utf8 {
            let unreserved = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)
                || c == UInt8(ascii: "-") || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "~")
            if unreserved || (keepSlash && c == UInt8(ascii: "/")) {
                out.append(c)
            } else {
                out += [UInt8(ascii: "%"), hexDigits[Int(c >> 4)], hexDigits[Int(c & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `YYYYMMDD'T'HHMMSS'Z'` and `YYYYMMDD` in UTC (no calendar or locale involved).
    package static func timestamps(_ seconds: Int64) -> (amzDate: String, day: String) {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secs = seconds - days * 86400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let day = pad(y, 4) + pad(m, 2) + pad(d, 2)
        return (day + "T" + pad(secs / 3600, 2) + pad(secs / 60 % 60, 2) + pad(secs % 60, 2) + "Z", day)
    }

    package static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let hexDigits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in digest { out += [hexDigits[Int(b >> 4)], hexDigits[Int(b & 15)]] }
        return String(decoding: out, as: UTF8.self)
    }

    private static func foldWhitespace(_ value: String) -> String {
        var out = ""
        var pendingSpace = false
        for c in value {
            if c == " " || c == "\t" || c == "\n" || c == "\r" {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(" ") }
                pendingSpace = false
                out.append(c)
            }
        }
        return out
    }
}
