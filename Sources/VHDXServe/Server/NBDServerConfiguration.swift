import NIOCore

/// Where a server listens.
package enum NBDEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// A unix socket at this path: created at start (owner-only permissions), removed at stop.
    /// A stale socket left by a killed server is replaced; a live one or any other file is refused.
    case unix(path: String)
    /// A TCP address; port 0 picks a free port (the server's `endpoint` tells which).
    case tcp(host: String, port: Int)

    package var description: String {
        switch self {
        case .unix(let path): "unix socket \(path)"
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }
}

/// STARTTLS with an X.509 certificate chain and its key (PEM files).
package struct NBDTLSConfiguration: Sendable, Equatable {
    package var certificatePath: String
    package var keyPath: String
    /// FORCEDTLS: every option but STARTTLS and ABORT is refused with NBD_REP_ERR_TLS_REQD
    /// until TLS is running. Otherwise TLS is the client's choice.
    package var required: Bool

    package init(certificatePath: String, keyPath: String, required: Bool) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.required = required
    }
}

/// How a server runs: the export, limits, timeouts, TLS.
package struct NBDServerConfiguration: Sendable {
    package var endpoint: NBDEndpoint
    /// The export's name; the empty name (the default export) reaches it too.
    package var exportName: String
    /// Connections served at once; the next one is refused (NBD_REP_ERR_SHUTDOWN with a
    /// message) and closed. Nil: no limit.
    package var maxConnections: Int?
    /// A client must finish negotiating within this time, else it is dropped (a client that
    /// stalls mid-negotiation cannot hold a connection slot).
    package var negotiationTimeout: TimeAmount = .seconds(30)
    /// Requests one connection may have at the disk at once; beyond it the server stops reading
    /// from that connection until replies go out.
    package var maxInFlightRequests = 64
    /// Payload bytes (reads and writes) one connection may have in flight; one request of up to
    /// the payload cap is always admitted when nothing else is in flight.
    package var maxInFlightBytes = 4 << 20
    /// Payload bytes in flight across all connections (what bounds memory with many clients);
    /// a request is always admitted when nothing is in flight.
    package var maxInFlightBytesTotal = 32 << 20
    /// Threads that run the disk's calls.
    package var diskThreads = max(4, System.coreCount)
    /// Threads that run the sockets.
    package var eventLoopThreads = max(1, min(System.coreCount, 4))
    package var tls: NBDTLSConfiguration?
    /// Lines for the operator: refused and dropped connections, disk errors, the stop.
    package var log: @Sendable (String) -> Void

    package init(endpoint: NBDEndpoint, exportName: String, maxConnections: Int? = nil, tls: NBDTLSConfiguration? = nil,
                 log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.endpoint = endpoint
        self.exportName = exportName
        self.maxConnections = maxConnections
        self.tls = tls
        self.log = log
    }
}
