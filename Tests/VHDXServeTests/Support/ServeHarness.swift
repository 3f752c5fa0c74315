#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import VHDXTestSupport
@testable import VHDXServe

/// An in-process server over a `MemoryDisk` on a temp unix socket.
struct TestServer {
    let server: NBDServer
    let disk: MemoryDisk
    let socket: String
    let name: String
    var uri: String { server.uri }

    static func start(_ disk: MemoryDisk, name: String = "mem", maxConnections: Int? = nil,
                      negotiationTimeout: TimeAmount = .seconds(10), tls: NBDTLSConfiguration? = nil,
                      configure: (inout NBDServerConfiguration) -> Void = { _ in }) throws -> TestServer {
        let socket = Fixtures.tempPath("nbd.sock")
        var c = NBDServerConfiguration(endpoint: .unix(path: socket), exportName: name, maxConnections: maxConnections, tls: tls)
        c.negotiationTimeout = negotiationTimeout
        c.diskThreads = 2
        c.eventLoopThreads = 1
        configure(&c)
        let server = try NBDServer.start(disk: disk, configuration: c)
        return TestServer(server: server, disk: disk, socket: socket, name: name)
    }

    func stop() throws { try server.stop() }
}

/// A raw NBD client over a unix socket, for hostile and protocol-level tests: it sends what it
/// is told, and reads with a timeout.
final class RawClient {
    let fd: Int32

    init(socket path: String) throws {
        fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let r = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else { Glibc.close(fd); throw TestFailure("connect(\(path)) failed: \(errno)") }
        setTimeout(5)
    }

    deinit { Glibc.close(fd) }

    func setTimeout(_ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends `bytes`; false when the server has closed (EPIPE).
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            done += n
        }
        return true
    }

    /// Exactly `count` bytes, or nil on end of stream or timeout.
    func read(_ count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + done, count - done, 0) }
            if n <= 0 { return nil }
            done += n
        }
        return out
    }

    /// Whether the server closed the connection (end of stream) within the timeout.
    func closedByServer() -> Bool {
        var byte: UInt8 = 0
        while true {
            let n = recv(fd, &byte, 1, 0)
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
        }
    }

    /// Reads and drops whatever arrives until the server closes or the timeout passes.
    func drain() {
        var sink = [UInt8](repeating: 0, count: 1 << 16)
        while sink.withUnsafeMutableBytes({ recv(fd, $0.baseAddress!, $0.count, 0) }) > 0 {}
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    // MARK: Protocol steps

    /// Reads the greeting and answers with `flags`.
    func handshake(_ flags: NBDClientFlags = [.fixedNewstyle, .noZeroes]) throws {
        guard let g = read(NBDLimits.greetingSize) else { throw TestFailure("no greeting") }
        guard g == NBDHandshake.greeting([.fixedNewstyle, .noZeroes]) else { throw TestFailure("unexpected greeting \(g)") }
        var w = WireWriter()
        w.u32(flags.rawValue)
        send(w.bytes)
    }

    /// Sends an option and collects its replies up to the final one (ACK or an error).
    func option(_ option: NBDOptionType, _ data: [UInt8] = []) throws -> [NBDOptionReply] {
        send(NBDOptionHeader.encode(option, data: data))
        var replies: [NBDOptionReply] = []
        while true {
            guard let header = read(NBDLimits.optionReplyHeaderSize),
                  let h = header.withUnsafeBytes({ NBDOptionReply.decodeHeader($0) }) else {
                throw TestFailure("no reply to \(option) after \(replies.count) replies")
            }
            let data = h.length == 0 ? [] : (read(Int(h.length)) ?? [])
            replies.append(NBDOptionReply(option: h.option, type: h.type, data: data))
            if h.type == .ack || h.type.isError { return replies }
        }
    }

    /// STRUCTURED_REPLY (optional), SET_META_CONTEXT for `contexts`, GO: ready for requests.
    @discardableResult
    func negotiate(name: String = "", structured: Bool = true, contexts: [String] = []) throws -> (size: UInt64, flags: NBDTransmissionFlags) {
        try handshake()
        if structured { _ = try option(.structuredReply) }
        if !contexts.isEmpty { _ = try option(.setMetaContext, NBDMetaContextRequest(exportName: name, queries: contexts).encode()) }
        let replies = try option(.go, NBDInfoRequest(exportName: name, requests: [.blockSize]).encode())
        guard replies.last?.type == .ack, let export = replies.first(where: { $0.data.first == 0 && $0.data.count == 12 }) else {
            throw TestFailure("GO failed: \(replies.map(\.type))")
        }
        var r = WireReader(export.data)
        _ = r.u16()
        return (r.u64()!, NBDTransmissionFlags(rawValue: r.u16()!))
    }

    /// Sends a request (and a write's data).
    func request(_ r: NBDRequest, data: [UInt8] = []) { send(r.encode() + data) }

    /// One reply message: a simple reply (with `readLength` bytes of data when it answers a
    /// successful read) or one structured chunk with its payload.
    enum Reply: Equatable {
        case simple(error: UInt32, handle: UInt64, data: [UInt8])
        case chunk(flags: NBDReplyFlags, type: NBDReplyType, handle: UInt64, payload: [UInt8])

        var handle: UInt64 {
            switch self {
            case .simple(_, let h, _), .chunk(_, _, let h, _): h
            }
        }
        var error: UInt32 {
            switch self {
            case .simple(let e, _, _): return e
            case .chunk(_, let type, _, let p):
                guard type.isError, p.count >= 4 else { return 0 }
                var r = WireReader(p)
                return r.u32()!
            }
        }
        var done: Bool {
            switch self {
            case .simple: true
            case .chunk(let f, _, _, _): f.contains(.done)
            }
        }
    }

    func readReply(readLength: Int = 0) -> Reply? {
        guard let magic = read(4) else { return nil }
        switch magic.withUnsafeBytes({ WireLoad.u32($0, 0) }) {
        case NBDMagic.simpleReply:
            guard let rest = read(12) else { return nil }
            let all = magic + rest
            guard case .simple(let error, let handle)? = all.withUnsafeBytes({ NBDReplyHeader.decode($0)?.header }) else { return nil }
            let data = error == 0 && readLength > 0 ? (read(readLength) ?? []) : []
            return .simple(error: error, handle: handle, data: data)
        case NBDMagic.structuredReply:
            guard let rest = read(16) else { return nil }
            let all = magic + rest
            guard case .structured(let flags, let type, let handle, let length)? = all.withUnsafeBytes({ NBDReplyHeader.decode($0)?.header }) else { return nil }
            let payload = length == 0 ? [] : (read(Int(length)) ?? [])
            return .chunk(flags: flags, type: type, handle: handle, payload: payload)
        default:
            return nil
        }
    }

    /// All chunks of one structured reply (up to the DONE one).
    func readStructured() -> [Reply] {
        var out: [Reply] = []
        while let r = readReply() {
            out.append(r)
            if r.done { break }
        }
        return out
    }
}

/// Runs a shell command with a timeout (a hung client must fail the test, not hang it).
@discardableResult
func runTool(_ command: String, timeout: Int = 60, allowFailure: Bool = false) throws -> (status: Int32, stdout: String, stderr: String) {
    try Shell.run("timeout -k 5 \(timeout) bash -c \(shellQuote(command))", allowFailure: allowFailure)
}

func shellQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
