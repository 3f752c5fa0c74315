/// Where requests go: `http(s)://host[:port]`. Requests use path-style addressing
/// (`/BUCKET/KEY`), which every S3-compatible server accepts and AWS still serves.
package struct S3Endpoint: Sendable, Equatable, CustomStringConvertible {
    package let scheme: String
    package let host: String
    package let port: Int?

    /// Parses `http://host:port` or `https://host` (a trailing `/` is allowed; a path is not).
    package init(parsing url: String) throws(S3Error) {
        func bad(_ why: String) -> S3Error {
            S3Error(.invalidArgument, operation: "reading the endpoint", endpoint: url,
                    message: "'\(url)' is not a usable endpoint URL: \(why)")
        }
        let lower = url.lowercased()
        let scheme: String
        if lower.hasPrefix("http://") { scheme = "http" } else if lower.hasPrefix("https://") { scheme = "https" } else {
            throw bad("expected http://HOST[:PORT] or https://HOST[:PORT]")
        }
        var rest = Substring(url.dropFirst(scheme.count + 3))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), !rest.contains("?"), !rest.contains("@") else {
            throw bad("a path, query or user name is not supported (path-style requests go to the root)")
        }
        var host = rest
        var port: Int?
        // IPv6 literal: [::1]:9000.
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw bad("unclosed '[' in the host") }
            host = rest[...close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw bad("bad port") }
                port = p
            } else if !after.isEmpty {
                throw bad("unexpected text after the host")
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let p = Int(rest[rest.index(after: colon)...]), (1...65535).contains(p) else { throw bad("bad port") }
            port = p
        }
        guard !host.isEmpty else { throw bad("no host") }
        self.scheme = scheme
        self.host = String(host)
        self.port = port
    }

    /// AWS's own regional endpoint.
    package static func aws(region: String) -> S3Endpoint {
        // swiftlint-free force: the string is well formed by construction.
        try! S3Endpoint(parsing: "https://s3.\(region).amazonaws.com")
    }

    /// The `Host` header (the port only when it is not the scheme's default).
    package var hostHeader: String {
        guard let port, !(scheme == "http" && port == 80), !(scheme == "https" && port == 443) else { return host }
        return "\(host):\(port)"
    }

    package var description: String { "\(scheme)://\(hostHeader)" }
}
