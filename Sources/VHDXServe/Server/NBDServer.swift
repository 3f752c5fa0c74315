import Dispatch
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// What every connection of one server shares.
final class NBDServerCore: Sendable {
    let disk: any ServedDisk
    /// The disk's `info`, read once: it does not change while serving.
    let info: ServedDiskInfo
    let configuration: NBDServerConfiguration
    let pool: NIOThreadPool
    let sslContext: NIOSSLContext?
    let connections = Mutex(NBDConnections())
    /// Read and write bytes in flight across every connection.
    let budget: InFlightBudget

    init(disk: any ServedDisk, configuration: NBDServerConfiguration, pool: NIOThreadPool, sslContext: NIOSSLContext?) {
        self.disk = disk
        self.info = disk.info
        self.configuration = configuration
        self.pool = pool
        self.sslContext = sslContext
        self.budget = InFlightBudget(limit: configuration.maxInFlightBytesTotal)
    }
}

/// The open connections, counted against the limit.
struct NBDConnections {
    var nextID = 1
    var served: [ObjectIdentifier: any Channel] = [:]
    var stopping = false
}

/// An NBD server for one disk: listens on a unix socket or TCP address, negotiates with each
/// client (fixed newstyle, optional or required STARTTLS), and serves its requests from a
/// thread pool until stopped.
///
/// ```swift
/// let server = try NBDServer.start(disk: disk, configuration: .init(endpoint: .unix(path: sock), exportName: "disk"))
/// print(server.uri)            // nbd+unix:///disk?socket=/path/disk.sock
/// try server.stop()            // graceful: in-flight requests finish, then `disk.close()`
/// ```
package final class NBDServer: Sendable {
    package let configuration: NBDServerConfiguration
    /// Where it listens (a TCP port 0 resolved to the port chosen).
    package let endpoint: NBDEndpoint
    private let core: NBDServerCore
    private let group: MultiThreadedEventLoopGroup
    private let serverChannel: any Channel
    private let socketFile: UnixSocketFile?
    private let state = Mutex(StopState.running)
    private let stopped = DispatchGroup()

    private enum StopState {
        case running
        case stopping
        case stopped(ServeError?)
    }

    private init(configuration: NBDServerConfiguration, endpoint: NBDEndpoint, core: NBDServerCore, group: MultiThreadedEventLoopGroup,
                 serverChannel: any Channel, socketFile: UnixSocketFile?) {
        self.configuration = configuration
        self.endpoint = endpoint
        self.core = core
        self.group = group
        self.serverChannel = serverChannel
        self.socketFile = socketFile
        stopped.enter()
    }

    /// Starts listening. On failure nothing is left behind (no socket file, no threads) and
    /// the disk is not closed: it is the caller's.
    package static func start(disk: any ServedDisk, configuration: NBDServerConfiguration) throws(ServeError) -> NBDServer {
        let sslContext: NIOSSLContext?
        if let tls = configuration.tls {
            sslContext = try NBDTLS.makeContext(tls)
        } else {
            sslContext = nil
        }
        var socketFile: UnixSocketFile?
        if case .unix(let path) = configuration.endpoint {
            socketFile = try UnixSocketFile.prepare(path)
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
        let pool = NIOThreadPool(numberOfThreads: configuration.diskThreads)
        pool.start()
        let core = NBDServerCore(disk: disk, configuration: configuration, pool: pool, sslContext: sslContext)
        let isTCP: Bool
        if case .tcp = configuration.endpoint { isTCP = true } else { isTCP = false }

        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 128)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: isTCP ? 1 : 0)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 64 << 10, maximum: 1 << 20))
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 512 << 10, high: 2 << 20))
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { channel in
                if isTCP {
                    // Replies are whole messages: send them at once (4 KiB IOPS depend on it).
                    _ = try? channel.syncOptions?.setOption(.socketOption(.tcp_nodelay), value: 1)
                }
                return channel.eventLoop.makeCompletedFuture {
                    let (id, refused) = core.connections.withLock { c -> (Int, Bool) in
                        let id = c.nextID
                        c.nextID += 1
                        if c.stopping { return (id, true) }
                        if let limit = configuration.maxConnections, c.served.count >= limit { return (id, true) }
                        c.served[ObjectIdentifier(channel)] = channel
                        return (id, false)
                    }
                    let peer = channel.remoteAddress.map { " from \($0)" } ?? ""
                    if refused {
                        configuration.log("connection \(id)\(peer): refused, \(configuration.maxConnections ?? 0) connections already served")
                    }
                    channel.closeFuture.whenComplete { _ in
                        core.connections.withLock { _ = $0.served.removeValue(forKey: ObjectIdentifier(channel)) }
                    }
                    try channel.pipeline.syncOperations.addHandler(NBDConnectionHandler(core: core, id: id, refused: refused))
                }
            }

        let channel: any Channel
        let endpoint: NBDEndpoint
        do {
            switch configuration.endpoint {
            case .unix(let path):
                channel = try bootstrap.bind(unixDomainSocketPath: path).wait()
                try socketFile?.adopt()
                endpoint = .unix(path: path)
            case .tcp(let host, let port):
                channel = try bootstrap.bind(host: host, port: port).wait()
                endpoint = .tcp(host: host, port: channel.localAddress?.port ?? port)
            }
        } catch {
            try? group.syncShutdownGracefully()
            try? pool.syncShutdownGracefully()
            socketFile?.remove()
            let e = error as? ServeError ?? ServeError(.io, "cannot listen on \(configuration.endpoint): \(error)")
            throw e
        }
        return NBDServer(configuration: configuration, endpoint: endpoint, core: core, group: group, serverChannel: channel, socketFile: socketFile)
    }

    /// The URI a client connects with (libnbd, qemu): `nbd+unix:///NAME?socket=PATH` or
    /// `nbd://HOST:PORT/NAME`, `nbds…` when TLS is offered.
    package var uri: String { NBDURI.make(endpoint: endpoint, exportName: configuration.exportName, tls: configuration.tls != nil) }

    /// Connections being served now (not counting refused ones).
    package var connectionCount: Int { core.connections.withLock { $0.served.count } }

    /// Stops: no new connections; negotiating clients are dropped; each transmitting client's
    /// in-flight requests finish and are answered, then its connection closes; then the threads
    /// stop, the socket file goes and `disk.close()` runs. Blocks until done; a second call
    /// waits for the first and returns its result. Must not be called on an event loop.
    package func stop() throws(ServeError) {
        let first = state.withLock { s -> Bool in
            guard case .running = s else { return false }
            s = .stopping
            return true
        }
        if !first {
            stopped.wait()
            if case .stopped(let error?) = state.withLock({ $0 }) { throw error }
            return
        }
        var failure: ServeError?
        try? serverChannel.close().wait()
        let channels = core.connections.withLock { c -> [any Channel] in
            c.stopping = true
            return Array(c.served.values)
        }
        for channel in channels {
            channel.pipeline.fireUserInboundEventTriggered(NBDServerStopping())
        }
        for channel in channels {
            try? channel.closeFuture.wait()
        }
        try? group.syncShutdownGracefully()
        // Work still queued (from connections that vanished) finishes or is dropped before the
        // disk closes.
        try? core.pool.syncShutdownGracefully()
        socketFile?.remove()
        do {
            try core.disk.close()
        } catch {
            failure = error
        }
        configuration.log(failure.map { "stopped; closing the disk failed: \($0.message)" } ?? "stopped")
        state.withLock { $0 = .stopped(failure) }
        stopped.leave()
        if let failure { throw failure }
    }

    /// Blocks until `stop()` has finished (from another thread, e.g. a signal handler's).
    package func waitUntilStopped() {
        stopped.wait()
    }
}

/// The URIs clients connect with (the NBD URI spec, as libnbd and qemu read it).
package enum NBDURI {
    package static func make(endpoint: NBDEndpoint, exportName: String, tls: Bool) -> String {
        let name = escape(exportName, keep: "-._~!$&'()*+,;=:@/")
        switch endpoint {
        case .unix(let path):
            return "nbd\(tls ? "s" : "")+unix:///\(name)?socket=\(escape(path, keep: "-._~/!$'()*+,:@"))"
        case .tcp(let host, let port):
            let h = host.contains(":") ? "[\(host)]" : host
            return "nbd\(tls ? "s" : "")://\(h):\(port)/\(name)"
        }
    }

    /// Percent-encodes every byte of `s`'s UTF-8 that is not unreserved or in `keep`.
    static func escape(_ s: String, keep: String) -> String {
        let allowed = Set(keep.utf8)
        var out = ""
        for b in s.utf8 {
            let c = Character(Unicode.Scalar(b))
            if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b < 0x80 && allowed.contains(b)) {
                out.append(c)
            } else {
                out += "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
