#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Dispatch
import VHDXServe

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a disk, chain or VHD Set over NBD (nbdinfo, nbdcopy, qemu, nbdfuse) until SIGINT or SIGTERM.",
        discussion: """
            SOURCE is a .vhdx, an .avhdx chain's top, a SET.vhds or an exported chain. Listens on a \
            unix socket (--socket PATH; default NAME.sock in the current directory, NAME being \
            SOURCE's file name without its extension) or a TCP address (--bind HOST:PORT; a bare \
            PORT or :PORT is 127.0.0.1). The socket is owner-only (mode 0600) and removed at the \
            stop; a live socket or any other file at PATH is refused. Prints where it listens, then \
            the URI to connect with (one line each on stdout). --tls-cert/--tls-key offer \
            NBD_OPT_STARTTLS; with --tls required, a client must start TLS before anything else. \
            Client certificates are not checked. On SIGINT/SIGTERM: no new connections, requests \
            in flight finish, the image closes cleanly, exit 0. Exit codes: 0 stopped cleanly; \
            1 error (SOURCE cannot be opened, the address cannot be used, the image cannot be \
            closed cleanly); 64 bad usage.
            """
    )

    @Argument(help: "The .vhdx, .avhdx chain top, SET.vhds or exported chain to serve.") var source: String
    @Flag(help: "Serve read-only: writes are refused (EPERM) and nothing is written to any file.") var readOnly = false
    @Option(help: ArgumentHelp("Listen on this unix socket.", valueName: "path")) var socket: String?
    @Option(help: ArgumentHelp("Listen on this TCP address (HOST:PORT, [IPv6]:PORT, or PORT for 127.0.0.1).", valueName: "host:port"))
    var bind: String?
    @Option(help: ArgumentHelp("The export name (default: SOURCE's file name).", valueName: "export")) var name: String?
    @Option(help: ArgumentHelp("Serve read-write with every write going into this new child of SOURCE (SOURCE untouched).", valueName: "child.avhdx"))
    var overlay: String?
    @Flag(help: "On a set: take a checkpoint, serve the frozen chain read-only, delete the checkpoint (keeping its reference point) at the stop.")
    var checkpoint = false
    @Option(help: ArgumentHelp("Connections served at once; more are refused.", valueName: "n")) var maxConnections: Int?
    @Option(help: ArgumentHelp("The server's X.509 certificate chain (PEM) for STARTTLS.", valueName: "file")) var tlsCert: String?
    @Option(help: ArgumentHelp("The certificate's private key (PEM).", valueName: "file")) var tlsKey: String?
    @Option(help: ArgumentHelp("optional (default with a certificate) or required.", valueName: "mode")) var tls: String?

    func validate() throws {
        if socket != nil && bind != nil { throw ValidationError("give --socket or --bind, not both") }
        if let bind { _ = try Self.parseBind(bind) }
        if let maxConnections, maxConnections < 1 { throw ValidationError("--max-connections must be at least 1") }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        if let tls {
            guard tls == "required" || tls == "optional" else { throw ValidationError("--tls takes required or optional, not \"\(tls)\"") }
            if tlsCert == nil { throw ValidationError("--tls \(tls) needs --tls-cert and --tls-key") }
        }
        if readOnly && overlay != nil { throw ValidationError("--read-only and --overlay exclude each other: an overlay takes the writes") }
        if let name, name.utf8.count > 4096 || name.contains("\0") { throw ValidationError("--name: at most 4096 bytes, no NUL") }
    }

    /// HOST:PORT, [IPv6]:PORT, :PORT or PORT (the last two on 127.0.0.1).
    static func parseBind(_ text: String) throws -> (host: String, port: Int) {
        var host = "127.0.0.1"
        var portText = text
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ValidationError("--bind \(text): expected [IPv6]:PORT")
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = String(text[text.index(close, offsetBy: 2)...])
        } else if let colon = text.lastIndex(of: ":") {
            let h = String(text[..<colon])
            guard !h.contains(":") else { throw ValidationError("--bind \(text): write an IPv6 address as [ADDRESS]:PORT") }
            if !h.isEmpty { host = h }
            portText = String(text[text.index(after: colon)...])
        }
        guard let port = Int(portText), (0...65535).contains(port), !host.isEmpty else {
            throw ValidationError("--bind \(text): expected HOST:PORT with a port from 0 to 65535")
        }
        return (host, port)
    }

    func run() throws {
        let fileName = source.split(separator: "/").last.map(String.init) ?? source
        let exportName = name ?? fileName
        let endpoint: NBDEndpoint
        if let bind {
            let (host, port) = try Self.parseBind(bind)
            endpoint = .tcp(host: host, port: port)
        } else {
            let stem = fileName.split(separator: ".", omittingEmptySubsequences: false).dropLast().joined(separator: ".")
            endpoint = .unix(path: socket ?? "\(stem.isEmpty ? fileName : stem).sock")
        }
        var options = ServeSourceOptions()
        options.readOnly = readOnly
        options.overlay = overlay
        options.checkpoint = checkpoint
        options.name = exportName
        let log: @Sendable (String) -> Void = { Output.message("vhdx serve: \($0)") }

        let disk: any ServedDisk
        do {
            disk = try ServedSource.open(source, options: options, log: log)
        } catch {
            Output.fail(error)
        }
        var configuration = NBDServerConfiguration(endpoint: endpoint, exportName: exportName, maxConnections: maxConnections, log: log)
        if let tlsCert, let tlsKey {
            configuration.tls = NBDTLSConfiguration(certificatePath: tlsCert, keyPath: tlsKey, required: tls == "required")
        }
        let server: NBDServer
        do {
            server = try NBDServer.start(disk: disk, configuration: configuration)
        } catch {
            try? disk.close()
            Output.fail(error)
        }

        // The signals are taken from their default action and handled on a queue of their own,
        // which runs the graceful stop; this thread waits for it.
        let queue = DispatchQueue(label: "vhdx.serve.signals")
        let failure = SendableBox<ServeError?>(nil)
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            s.setEventHandler {
                Output.message("vhdx serve: \(sig == SIGINT ? "SIGINT" : "SIGTERM"): stopping")
                do throws(ServeError) {
                    try server.stop()
                } catch {
                    failure.value = error
                }
            }
            s.resume()
            sources.append(s)
        }
        // The URI names the socket by its absolute path: a client may run anywhere.
        var shown = server.endpoint
        if case .unix(let path) = shown, !path.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            if getcwd(&buffer, buffer.count) != nil {
                let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                shown = .unix(path: (cwd == "/" ? "" : cwd) + "/" + (path.hasPrefix("./") ? String(path.dropFirst(2)) : path))
            }
        }
        let listening: String
        switch shown {
        case .unix(let path): listening = "unix socket \(path)"
        case .tcp: listening = "tcp \(shown)"
        }
        Output.data("serving \(source) as \"\(exportName)\" on \(listening)\(configuration.tls.map { $0.required ? " (TLS required)" : " (TLS offered)" } ?? "")")
        Output.data(NBDURI.make(endpoint: shown, exportName: exportName, tls: configuration.tls != nil))
        fflush(nil)
        server.waitUntilStopped()
        for s in sources { s.cancel() }
        if let error = queue.sync(execute: { failure.value }) {
            Output.message("vhdx: \(error.message)")
            throw ExitCode(1)
        }
    }
}

/// A value the signal queue sets and the main thread reads after `queue.sync`.
private final class SendableBox<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
