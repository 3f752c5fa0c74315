import Crypto
import Foundation
import Testing
@testable import VHDXObjectStore
import VHDXTestSupport

/// The signer against AWS's published SigV4 test suite (Fixtures/sigv4, see its README): the
/// canonical request, the string to sign and the signature of every case.
@Suite struct SigV4TestSuiteTests {
    static let folder = URL(fileURLWithPath: S3TestServer.packageRoot.path).appendingPathComponent("Fixtures/sigv4")

    static var cases: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { !$0.contains(".") && $0 != "LICENSE" && $0 != "NOTICE" }.sorted()
    }

    @Test func theSuiteIsThere() {
        #expect(Self.cases.count == 31)
    }

    @Test(arguments: cases) func vector(_ name: String) throws {
        let dir = Self.folder.appendingPathComponent(name)
        func text(_ file: String) throws -> String {
            var s = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            if s.hasSuffix("\n") { s.removeLast() }
            return s
        }
        let context = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("context.json"))) as? [String: Any])
        let creds = try #require(context["credentials"] as? [String: Any])
        let request = try ParsedRequest(try String(contentsOf: dir.appendingPathComponent("request.txt"), encoding: .utf8))
        let formatter = ISO8601DateFormatter()
        let timestamp = try #require(context["timestamp"] as? String)
        let date = try #require(formatter.date(from: timestamp))
        let signer = SigV4Signer(
            credentials: S3Credentials(accessKeyID: try #require(creds["access_key_id"] as? String),
                                       secretAccessKey: try #require(creds["secret_access_key"] as? String),
                                       sessionToken: creds["token"] as? String),
            region: try #require(context["region"] as? String), service: try #require(context["service"] as? String))
        let signature = signer.sign(method: request.method, path: request.path, query: request.query,
                                    headers: request.headers,
                                    payloadHash: SigV4Signer.hex(SHA256.hash(data: request.body)),
                                    date: Int64(date.timeIntervalSince1970),
                                    sendContentHash: context["sign_body"] as? Bool ?? false)
        #expect(signature.canonicalRequest == (try text("header-canonical-request.txt")))
        #expect(signature.stringToSign == (try text("header-string-to-sign.txt")))
        #expect(signature.signature == (try text("header-signature.txt")))
        #expect(signature.authorization.hasSuffix("Signature=\(try text("header-signature.txt"))"))
    }

    /// The four worked examples of AWS's S3 API reference ("Signature Calculations for the
    /// Authorization Header: Transferring Payload in a Single Chunk"): S3's own rules (the
    /// `x-amz-content-sha256` header, a `$` in the key, a value-less `?lifecycle`, query order).
    @Test(arguments: [
        ("GET", "/test.txt", [(String, String)](), [("Range", "bytes=0-9")], "",
         "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
        ("PUT", "/test$file.text", [], [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
         "Welcome to Amazon S3.", "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
        ("GET", "/", [("lifecycle", "")], [], "", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        ("GET", "/", [("max-keys", "2"), ("prefix", "J")], [], "", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    ] as [(String, String, [(String, String)], [(String, String)], String, String)])
    func s3Example(_ example: (String, String, [(String, String)], [(String, String)], String, String)) {
        let (method, path, query, headers, body, expected) = example
        let signer = SigV4Signer(credentials: S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE",
                                                            secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                                 region: "us-east-1")
        let signature = signer.sign(method: method, path: path, query: query,
                                    headers: [("Host", "examplebucket.s3.amazonaws.com")] + headers,
                                    payloadHash: SigV4Signer.hex(SHA256.hash(data: Array(body.utf8))),
                                    date: 1_369_353_600)
        #expect(signature.signature == expected)
    }

    @Test func timestamps() {
        #expect(SigV4Signer.timestamps(1_440_938_160) == ("20150830T123600Z", "20150830"))
        #expect(SigV4Signer.timestamps(0) == ("19700101T000000Z", "19700101"))
        #expect(SigV4Signer.timestamps(951_782_400) == ("20000229T000000Z", "20000229"))
    }
}

/// A request as the suite writes it: `METHOD PATH[?QUERY] HTTP/1.1`, header lines (indented
/// lines continue the previous value), a blank line, the body.
struct ParsedRequest {
    var method = ""
    var path = ""
    var query: [(String, String)] = []
    var headers: [(String, String)] = []
    var body: [UInt8] = []

    init(_ text: String) throws {
        let lines = text.components(separatedBy: "\n")
        let first = lines[0]
        guard let space = first.firstIndex(of: " "), let version = first.range(of: " HTTP/", options: .backwards) else {
            throw CocoaError(.fileReadCorruptFile)
        }
        method = String(first[..<space])
        let target = String(first[first.index(after: space)..<version.lowerBound])
        if let q = target.firstIndex(of: "?") {
            path = String(target[..<q])
            for item in target[target.index(after: q)...].split(separator: "&") {
                let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(pair[0]).removingPercentEncoding ?? String(pair[0])
                let value = pair.count > 1 ? (String(pair[1]).removingPercentEncoding ?? String(pair[1])) : ""
                query.append((name, value))
            }
        } else {
            path = target
        }
        var index = 1
        while index < lines.count, !lines[index].isEmpty {
            let line = lines[index]
            if line.first == " " || line.first == "\t", !headers.isEmpty {
                headers[headers.count - 1].1 += "\n" + line
            } else if let colon = line.firstIndex(of: ":") {
                headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
            }
            index += 1
        }
        if index + 1 < lines.count {
            body = Array(lines[(index + 1)...].joined(separator: "\n").utf8)
        }
    }
}
