/// An object (or a prefix) in S3-compatible storage, named as `s3://BUCKET/KEY`.
///
/// `s3://BUCKET/PREFIX/` (a trailing slash) and `s3://BUCKET` name prefixes, for listing.
package struct S3Location: Sendable, Hashable, CustomStringConvertible {
    package let bucket: String
    /// The object's key, or the prefix (empty or ending in `/`) when `isPrefix`.
    package let key: String

    package static let scheme = "s3://"

    /// True when the argument is meant as an S3 URL (so the caller parses it rather than
    /// taking it for a local path).
    package static func isS3(_ argument: String) -> Bool {
        argument.lowercased().hasPrefix(scheme)
    }

    package init(bucket: String, key: String) throws(S3Error) {
        try Self.validate(bucket: bucket, url: "s3://\(bucket)/\(key)")
        guard key.utf8.count <= 1024 else {
            throw S3Error(.invalidArgument, operation: "parsing the URL", bucket: bucket, key: key,
                          message: "the key is \(key.utf8.count) bytes long; S3 keys are at most 1024 bytes")
        }
        self.bucket = bucket
        self.key = key
    }

    /// Parses `s3://BUCKET/KEY`, `s3://BUCKET/PREFIX/` or `s3://BUCKET`.
    package init(parsing url: String) throws(S3Error) {
        guard Self.isS3(url) else {
            throw S3Error(.invalidArgument, operation: "parsing the URL",
                          message: "'\(url)' is not an S3 URL: expected s3://BUCKET/KEY")
        }
        let rest = url.dropFirst(Self.scheme.count)
        let bucket: Substring
        let key: Substring
        if let slash = rest.firstIndex(of: "/") {
            bucket = rest[..<slash]
            key = rest[rest.index(after: slash)...]
        } else {
            bucket = rest
            key = ""
        }
        guard !bucket.isEmpty else {
            throw S3Error(.invalidArgument, operation: "parsing the URL",
                          message: "'\(url)' names no bucket: expected s3://BUCKET/KEY")
        }
        if key.hasPrefix("/") {
            throw S3Error(.invalidArgument, operation: "parsing the URL",
                          message: "'\(url)': the key starts with '/' (two slashes after the bucket)")
        }
        try self.init(bucket: String(bucket), key: String(key))
    }

    /// A prefix (listing) rather than one object.
    package var isPrefix: Bool { key.isEmpty || key.hasSuffix("/") }

    /// The location of an object: throws a clear error when this names a prefix.
    package func requireObject() throws(S3Error) -> S3Location {
        guard !isPrefix else {
            throw S3Error(.invalidArgument, operation: "parsing the URL", bucket: bucket, key: key,
                          message: "'\(self)' names a folder (prefix), not an object: expected s3://BUCKET/KEY")
        }
        return self
    }

    /// A key under this prefix.
    package func appending(_ name: String) throws(S3Error) -> S3Location {
        let base = key.isEmpty || key.hasSuffix("/") ? key : key + "/"
        return try S3Location(bucket: bucket, key: base + name)
    }

    package var description: String { "s3://\(bucket)/\(key)" }

    /// S3's bucket naming rules (the ones every server enforces): 3 to 63 characters, lower-case
    /// letters, digits, '.' and '-', starting and ending with a letter or digit.
    private static func validate(bucket: String, url: String) throws(S3Error) {
        let bytes = Array(bucket.utf8)
        func isAlnum(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) }
        let ok = (3...63).contains(bytes.count)
            && bytes.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
            && isAlnum(bytes.first!) && isAlnum(bytes.last!)
        guard ok else {
            throw S3Error(.invalidArgument, operation: "parsing the URL", bucket: bucket,
                          message: "'\(url)': '\(bucket)' is not a valid bucket name (3 to 63 characters: a-z, 0-9, '.', '-')")
        }
    }
}
