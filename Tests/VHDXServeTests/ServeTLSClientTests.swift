import Foundation
import Testing
import VHDXTestSupport
@testable import VHDXServe

/// NBD_OPT_STARTTLS with an X.509 certificate, against libnbd (`nbds+unix://…` with a
/// `tls-certificates` directory holding the CA and a client certificate).
@Suite(.serialized) struct ServeTLSClientTests {
    /// A CA, a server certificate for localhost signed by it, and a client certificate, made
    /// with openssl in a temp directory laid out as libnbd expects.
    static func makeCertificates() throws -> String {
        try Shell.require("openssl")
        let dir = Fixtures.tempPath("pki")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let ext = "\(dir)/server.ext"
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n".write(toFile: ext, atomically: true, encoding: .utf8)
        try runTool("""
            cd '\(dir)' && \
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca-cert.pem -days 2 -subj /CN=test-ca 2>&1 && \
            openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr -subj /CN=localhost 2>&1 && \
            openssl x509 -req -in server.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial -out server-cert.pem -days 2 -extfile server.ext 2>&1 && \
            openssl req -newkey rsa:2048 -nodes -keyout client-key.pem -out client.csr -subj /CN=client 2>&1 && \
            openssl x509 -req -in client.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial -out client-cert.pem -days 2 2>&1
            """, timeout: 120)
        return dir
    }

    @Test func requiredTLSServesOnlyInsideTLS() throws {
        try Shell.require("nbdinfo")
        let pki = try Self.makeCertificates()
        let disk = MemoryDisk(size: 1 << 20, fill: { UInt8(truncatingIfNeeded: $0) }, allocatedBlocks: [0])
        let tls = NBDTLSConfiguration(certificatePath: "\(pki)/server-cert.pem", keyPath: "\(pki)/server-key.pem", required: true)
        let s = try TestServer.start(disk, tls: tls)
        defer { try? s.stop() }
        #expect(s.uri.hasPrefix("nbds+unix:///mem?socket="))

        // Before STARTTLS every option but STARTTLS and ABORT is refused.
        let raw = try RawClient(socket: s.socket)
        try raw.handshake()
        #expect(try raw.option(.go, NBDInfoRequest(exportName: "", requests: []).encode()).last?.type == .errTLSRequired)
        #expect(try raw.option(.list).last?.type == .errTLSRequired)
        #expect(try raw.option(.startTLS).last?.type == .ack)

        // A plaintext client cannot connect; libnbd with the CA can, and sees the export.
        let plain = try runTool("nbdinfo --size 'nbd+unix:///mem?socket=\(s.socket)'", allowFailure: true)
        #expect(plain.status != 0)
        let secure = try runTool("nbdinfo --size '\(s.uri)&tls-certificates=\(pki)'", allowFailure: true)
        #expect(secure.status == 0, "\(secure.stderr)")
        #expect(secure.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(1 << 20)")
        // The data comes through TLS intact, and haggling restarted inside it (structured
        // replies and meta contexts negotiated after STARTTLS: --map needs both).
        let out = Fixtures.tempPath("tls.raw")
        defer { unlink(out) }
        try runTool("nbdcopy '\(s.uri)&tls-certificates=\(pki)' '\(out)'")
        #expect(sameBytes(try [UInt8](Data(contentsOf: URL(fileURLWithPath: out))), disk.bytes))
        let map = try runTool("nbdinfo --map '\(s.uri)&tls-certificates=\(pki)'").stdout
        #expect(map.contains("data") && map.contains("hole"))
    }

    @Test func optionalTLSAlsoServesPlaintext() throws {
        try Shell.require("nbdinfo")
        let pki = try Self.makeCertificates()
        let tls = NBDTLSConfiguration(certificatePath: "\(pki)/server-cert.pem", keyPath: "\(pki)/server-key.pem", required: false)
        let s = try TestServer.start(MemoryDisk(size: 1 << 20), tls: tls)
        defer { try? s.stop() }
        #expect(try runTool("nbdinfo --size 'nbd+unix:///mem?socket=\(s.socket)'").stdout.hasPrefix("1048576"))
        #expect(try runTool("nbdinfo --size '\(s.uri)&tls-certificates=\(pki)'").stdout.hasPrefix("1048576"))
    }

    @Test func unusableCertificateIsAClearError() throws {
        let bogus = Fixtures.tempPath("bogus.pem")
        try "not a certificate".write(toFile: bogus, atomically: true, encoding: .utf8)
        let c = NBDServerConfiguration(endpoint: .unix(path: Fixtures.tempPath("x.sock")), exportName: "x",
                                       tls: NBDTLSConfiguration(certificatePath: bogus, keyPath: bogus, required: true))
        #expect {
            _ = try NBDServer.start(disk: MemoryDisk(size: 1 << 20), configuration: c)
        } throws: { error in
            (error as? ServeError)?.message.contains(bogus) == true
        }
    }
}
