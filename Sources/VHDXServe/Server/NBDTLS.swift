import NIOSSL

/// The server side of NBD_OPT_STARTTLS: an X.509 certificate chain and its private key.
enum NBDTLS {
    /// The TLS context, or an error naming the file that cannot be used and why.
    static func makeContext(_ c: NBDTLSConfiguration) throws(ServeError) -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(c.certificatePath)
        } catch {
            throw ServeError(.io, "\(c.certificatePath): cannot read a PEM certificate: \(error)")
        }
        guard !chain.isEmpty else { throw ServeError(.io, "\(c.certificatePath): no certificate in the file") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: c.keyPath, format: .pem)
        } catch {
            throw ServeError(.io, "\(c.keyPath): cannot read a PEM private key: \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ServeError(.io, "\(c.certificatePath), \(c.keyPath): not a usable certificate and key (do they match?): \(error)")
        }
    }
}
