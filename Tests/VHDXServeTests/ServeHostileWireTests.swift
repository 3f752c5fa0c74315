import Foundation
import NIOCore
import Testing
import VHDXTestSupport
@testable import VHDXServe

/// Clients that break the protocol: the server answers with the protocol's error or drops that
/// connection, and keeps serving the others.
@Suite(.serialized) struct ServeHostileWireTests {
    static func disk(readOnly: Bool = false) -> MemoryDisk {
        MemoryDisk(size: 4 << 20, readOnly: readOnly, fill: { UInt8(truncatingIfNeeded: $0 >> 3) }, allocatedBlocks: [0, 1])
    }

    /// A well-behaved client still gets served (reads the first 512 bytes).
    static func stillServes(_ s: TestServer) throws {
        let c = try RawClient(socket: s.socket)
        try c.negotiate()
        c.request(NBDRequest(type: .read, handle: 77, offset: 0, length: 512))
        let chunks = c.readStructured()
        guard case .chunk(_, .offsetData, 77, let payload)? = chunks.first else { throw TestFailure("no data: \(chunks)") }
        #expect(Array(payload.dropFirst(8)) == Array(s.disk.bytes[0..<512]))
    }

    @Test func garbageBeforeNegotiatingIsDropped() throws {
        let s = try TestServer.start(Self.disk())
        defer { try? s.stop() }
        // Unknown client flags.
        let a = try RawClient(socket: s.socket)
        _ = a.read(NBDLimits.greetingSize)
        a.send([0xFF, 0xFF, 0xFF, 0xFF])
        #expect(a.closedByServer())
        // Valid flags, then no IHAVEOPT.
        let b = try RawClient(socket: s.socket)
        try b.handshake()
        b.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(b.closedByServer())
        try Self.stillServes(s)
    }

    @Test func unknownAndOutOfOrderOptionsAreErrors() throws {
        let s = try TestServer.start(Self.disk())
        defer { try? s.stop() }
        let c = try RawClient(socket: s.socket)
        try c.handshake()
        #expect(try c.option(NBDOptionType(rawValue: 4242), [1, 2, 3]).last?.type == .errUnsup)
        #expect(try c.option(.extendedHeaders).last?.type == .errUnsup)
        // Meta contexts need structured replies first.
        let meta = NBDMetaContextRequest(exportName: "", queries: ["base:allocation"]).encode()
        #expect(try c.option(.setMetaContext, meta).last?.type == .errInvalid)
        #expect(try c.option(.startTLS).last?.type == .errUnsup)
        #expect(try c.option(.list, [1]).last?.type == .errInvalid)
        #expect(try c.option(.go, [0, 0, 0, 50]).last?.type == .errInvalid)
        #expect(try c.option(.go, NBDInfoRequest(exportName: "nope", requests: []).encode()).last?.type == .errUnknown)
        // Too much option data: skipped, refused, still in step.
        #expect(try c.option(.go, [UInt8](repeating: 0, count: NBDLimits.maxOptionLength + 1)).last?.type == .errTooBig)
        let list = try c.option(.list)
        #expect(list.map(\.type) == [.server, .ack])
        _ = try c.option(.structuredReply)
        let set = try c.option(.setMetaContext, NBDMetaContextRequest(exportName: "mem", queries: ["base:", "base:allocation", "x-none:y"]).encode())
        #expect(set.map(\.type) == [.metaContext, .ack])
        let listed = try c.option(.listMetaContext, NBDMetaContextRequest(exportName: "", queries: ["qemu:dirty-bitmap:"]).encode())
        #expect(listed.count == 2 && String(decoding: listed[0].data.dropFirst(4), as: UTF8.self) == MemoryDisk.dirtyContext)
        let go = try c.option(.go, NBDInfoRequest(exportName: "mem", requests: [.name, .description, .blockSize]).encode())
        #expect(go.last?.type == .ack)
        #expect(go.filter { $0.type == .info }.count == 4)
        c.request(NBDRequest(type: .blockStatus, handle: 1, offset: 0, length: 4 << 20))
        let status = c.readStructured()
        #expect(status.count == 1)
        guard case .chunk(.done, .blockStatus, 1, let p)? = status.first else { throw TestFailure("\(status)") }
        #expect(p == [0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0x3E, 0, 0, 0, 0, 0, 3])
    }

    @Test func badRequestsGetTheirErrors() throws {
        let s = try TestServer.start(Self.disk())
        defer { try? s.stop() }
        let c = try RawClient(socket: s.socket)
        let (size, flags) = try c.negotiate(contexts: ["base:allocation"])
        #expect(size == 4 << 20 && flags.contains(.sendFlush) && flags.contains(.sendFastZero))
        func error(_ r: NBDRequest, data: [UInt8] = []) -> UInt32? {
            c.request(r, data: data)
            return c.readStructured().last?.error
        }
        #expect(error(NBDRequest(type: .read, handle: 1, offset: 100, length: 512)) == 22)
        #expect(error(NBDRequest(type: .read, handle: 2, offset: 4 << 20, length: 512)) == 22)
        #expect(error(NBDRequest(type: .read, handle: 3, offset: .max - 511, length: 1024)) == 22)
        #expect(error(NBDRequest(type: .write, handle: 4, offset: (4 << 20) - 512, length: 1024), data: [UInt8](repeating: 1, count: 1024)) == 28)
        #expect(error(NBDRequest(type: NBDCommandType(rawValue: 42), handle: 5, offset: 0, length: 0)) == 22)
        #expect(error(NBDRequest(flags: .reqOne, type: .read, handle: 6, offset: 0, length: 512)) == 22)
        // Over the 32 MiB cap: the write's data is skipped, not stored, and the stream stays in step.
        let big = (32 << 20) + 512
        c.request(NBDRequest(type: .write, handle: 7, offset: 0, length: UInt32(big)))
        let chunk = [UInt8](repeating: 0xEE, count: 1 << 20)
        for _ in 0..<(big / chunk.count) { c.send(chunk) }
        c.send([UInt8](repeating: 0xEE, count: big % chunk.count))
        // (The 4 MiB export is smaller than the cap: past the end comes first, ENOSPC.)
        #expect(c.readStructured().last?.error == 28)
        #expect(error(NBDRequest(type: .read, handle: 8, offset: 0, length: (32 << 20) + 512)) == 22)
        // A failing disk read: an error chunk, the connection goes on.
        s.disk.failNextRead(ServeError(.io, "injected"))
        #expect(error(NBDRequest(type: .read, handle: 9, offset: 0, length: 512)) == 5)
        #expect(error(NBDRequest(type: .read, handle: 10, offset: 0, length: 512)) == 0)
        #expect(s.disk.snapshot { $0.writes } == 0)
        #expect(s.disk.bytes[0] != 0xEE)
    }

    @Test func simpleRepliesWithoutStructuredReplies() throws {
        let s = try TestServer.start(Self.disk())
        defer { try? s.stop() }
        let c = try RawClient(socket: s.socket)
        try c.negotiate(structured: false)
        c.request(NBDRequest(type: .read, handle: 3, offset: 512, length: 1024))
        #expect(c.readReply(readLength: 1024) == .simple(error: 0, handle: 3, data: Array(s.disk.bytes[512..<1536])))
        c.request(NBDRequest(type: .read, handle: 4, offset: 1, length: 1024))
        #expect(c.readReply(readLength: 1024) == .simple(error: 22, handle: 4, data: []))
        c.request(NBDRequest(type: .blockStatus, handle: 5, offset: 0, length: 512))
        #expect(c.readReply() == .simple(error: 22, handle: 5, data: []))
    }

    @Test func writesToAReadOnlyExportArePermissionErrors() throws {
        let s = try TestServer.start(Self.disk(readOnly: true))
        defer { try? s.stop() }
        let c = try RawClient(socket: s.socket)
        let (_, flags) = try c.negotiate()
        #expect(flags.contains(.readOnly) && !flags.contains(.sendTrim))
        c.request(NBDRequest(type: .write, handle: 1, offset: 0, length: 512), data: [UInt8](repeating: 9, count: 512))
        #expect(c.readStructured().last?.error == 1)
        c.request(NBDRequest(type: .writeZeroes, handle: 2, offset: 0, length: 512))
        #expect(c.readStructured().last?.error == 1)
        c.request(NBDRequest(type: .trim, handle: 3, offset: 0, length: 512))
        #expect(c.readStructured().last?.error == 1)
        c.request(NBDRequest(type: .flush, handle: 4, offset: 0, length: 0))
        #expect(c.readStructured().last?.error == 0)
        #expect(s.disk.snapshot { $0.writes + $0.trims + $0.zeroes.count } == 0)
    }

    @Test func exportNameOptionAndNoZeroes() throws {
        let s = try TestServer.start(Self.disk())
        defer { try? s.stop() }
        for noZeroes in [false, true] {
            let c = try RawClient(socket: s.socket)
            try c.handshake(noZeroes ? [.fixedNewstyle, .noZeroes] : [.fixedNewstyle])
            c.send(NBDOptionHeader.encode(.exportName, data: Array("mem".utf8)))
            let reply = c.read(noZeroes ? 10 : 134)
            #expect(reply.map { Array($0[0..<8]) } == [0, 0, 0, 0, 0, 0x40, 0, 0])
            c.request(NBDRequest(type: .read, handle: 1, offset: 0, length: 512))
            #expect(c.readReply(readLength: 512)?.error == 0)
        }
        // An unknown name cannot be answered with an error: the connection is dropped.
        let bad = try RawClient(socket: s.socket)
        try bad.handshake()
        bad.send(NBDOptionHeader.encode(.exportName, data: Array("other".utf8)))
        #expect(bad.closedByServer())
    }

    @Test func nothingAfterDisconnectAndHalfRequests() throws {
        let s = try TestServer.start(Self.disk())
        defer { try? s.stop() }
        let c = try RawClient(socket: s.socket)
        try c.negotiate()
        c.request(NBDRequest(type: .disconnect, handle: 1, offset: 0, length: 0))
        c.request(NBDRequest(type: .write, handle: 2, offset: 0, length: 512), data: [UInt8](repeating: 0xEE, count: 512))
        #expect(c.closedByServer())
        // Half a header, and a write whose data stops short, then the client vanishes.
        let h = try RawClient(socket: s.socket)
        try h.negotiate()
        h.send(Array(NBDRequest(type: .read, handle: 3, offset: 0, length: 512).encode()[0..<11]))
        let w = try RawClient(socket: s.socket)
        try w.negotiate()
        w.request(NBDRequest(type: .write, handle: 4, offset: 0, length: 65536), data: [UInt8](repeating: 0xEE, count: 30000))
        _ = consume h
        _ = consume w
        try Self.stillServes(s)
        #expect(s.disk.snapshot { $0.writes } == 0)
    }

    @Test func connectionsOverTheLimitAreRefused() throws {
        let s = try TestServer.start(Self.disk(), maxConnections: 2)
        defer { try? s.stop() }
        let a = try RawClient(socket: s.socket)
        try a.negotiate()
        let b = try RawClient(socket: s.socket)
        try b.handshake()
        let c = try RawClient(socket: s.socket)
        try c.handshake()
        let refusal = try c.option(.go, NBDInfoRequest(exportName: "", requests: []).encode())
        #expect(refusal.map(\.type) == [.errShutdown])
        #expect(String(decoding: refusal[0].data, as: UTF8.self).contains("limit of 2"))
        #expect(try c.option(.structuredReply).map(\.type) == [.errShutdown])
        #expect(try c.option(.abort).map(\.type) == [.ack])
        #expect(c.closedByServer())
        _ = consume b
        // A slot frees when a client leaves.
        var freed = false
        for _ in 0..<100 where !freed {
            usleep(20_000)
            freed = s.server.connectionCount < 2
        }
        #expect(freed)
        try Self.stillServes(s)
        _ = a
    }

    @Test func aStalledNegotiationBlocksNobodyAndIsDropped() throws {
        let s = try TestServer.start(Self.disk(), maxConnections: 1, negotiationTimeout: .milliseconds(300))
        defer { try? s.stop() }
        let stalled = try RawClient(socket: s.socket)
        _ = stalled.read(NBDLimits.greetingSize)
        stalled.send([0, 0, 0, 1])
        stalled.send(Array(NBDOptionHeader.encode(.go, data: [0, 0, 0, 0, 0, 0])[0..<10]))
        #expect(stalled.closedByServer())
        try Self.stillServes(s)
    }

    @Test func stopFinishesInFlightWorkThenClosesTheDisk() throws {
        let s = try TestServer.start(Self.disk())
        let c = try RawClient(socket: s.socket)
        try c.negotiate()
        c.request(NBDRequest(type: .write, handle: 1, offset: 0, length: 4096), data: [UInt8](repeating: 0x11, count: 4096))
        #expect(c.readStructured().last?.error == 0)
        let negotiating = try RawClient(socket: s.socket)
        try negotiating.handshake()
        try s.stop()
        #expect(c.closedByServer())
        #expect(negotiating.closedByServer())
        #expect(s.disk.snapshot { $0.closes } == 1)
        #expect(access(s.socket, F_OK) != 0)
        try s.stop()
        #expect(s.disk.snapshot { $0.closes } == 1)
    }

    /// A stop while writes are at the disk: they finish and are answered, then the connection
    /// closes, then the disk closes (after them, once).
    @Test func stopWaitsForWritesInFlight() throws {
        let disk = Self.disk()
        disk.writeDelay.withLock { $0 = 300_000 }
        let s = try TestServer.start(disk)
        let c = try RawClient(socket: s.socket)
        try c.negotiate()
        for i in 0..<3 {
            c.request(NBDRequest(type: .write, handle: UInt64(i), offset: UInt64(i) << 16, length: 4096), data: [UInt8](repeating: 0x5A, count: 4096))
        }
        usleep(100_000)
        let stopper = Thread { try? s.stop() }
        stopper.start()
        var answered = 0
        while let r = c.readReply() {
            #expect(r.error == 0)
            answered += 1
        }
        #expect(answered == 3)
        try s.stop()
        disk.snapshot { st in
            #expect(st.writes == 3)
            #expect(st.closes == 1)
        }
        #expect(disk.bytes[2 << 16] == 0x5A)
    }

    @Test func socketPathRules() throws {
        let notSocket = Fixtures.tempPath("plain")
        _ = FileManager.default.createFile(atPath: notSocket, contents: Data([1]))
        defer { unlink(notSocket) }
        #expect(throws: ServeError.self) {
            _ = try NBDServer.start(disk: Self.disk(), configuration: NBDServerConfiguration(endpoint: .unix(path: notSocket), exportName: "x"))
        }
        #expect(FileManager.default.contents(atPath: notSocket) == Data([1]))
        let s = try TestServer.start(Self.disk())
        defer { try? s.stop() }
        #expect(throws: ServeError.self) {
            _ = try NBDServer.start(disk: Self.disk(), configuration: NBDServerConfiguration(endpoint: .unix(path: s.socket), exportName: "x"))
        }
        var st = stat()
        #expect(lstat(s.socket, &st) == 0 && st.st_mode & 0o777 == 0o600)
        try Self.stillServes(s)
    }

    /// A client that sends requests but never reads the replies: the server stops reading its
    /// requests (the replies it cannot send and the requests in flight are bounded), and once the
    /// client reads, every reply comes.
    @Test func aClientThatDoesNotReadIsHeldBack() throws {
        let s = try TestServer.start(MemoryDisk(size: 64 << 20, fill: { UInt8(truncatingIfNeeded: $0 >> 20) }, allocatedBlocks: Set(0..<1024)))
        defer { try? s.stop() }
        let c = try RawClient(socket: s.socket)
        try c.negotiate()
        let count = 128
        var batch: [UInt8] = []
        for i in 0..<count { batch += NBDRequest(type: .read, handle: UInt64(i), offset: UInt64(i % 64) << 20, length: 1 << 20).encode() }
        c.send(batch)
        usleep(400_000)
        let served = s.disk.snapshot { $0.reads }
        #expect(served < count / 2, "\(served) reads done for a client reading nothing")
        var handles = Set<UInt64>()
        c.setTimeout(10)
        for _ in 0..<count {
            guard case .chunk(_, .offsetData, let h, let p)? = c.readReply() else { throw TestFailure("reply missing after \(handles.count)") }
            #expect(p.count == 8 + (1 << 20) && p[8] == UInt8(h % 64))
            handles.insert(h)
        }
        #expect(handles.count == count)
    }

    /// Many writes in one burst (their data sliced out of the same receive buffer while
    /// earlier ones are still at the disk), interleaved with reads: every reply, every byte.
    @Test func pipelinedWritesLandWhole() throws {
        let s = try TestServer.start(MemoryDisk(size: 8 << 20))
        defer { try? s.stop() }
        let c = try RawClient(socket: s.socket)
        try c.negotiate()
        var batch: [UInt8] = []
        let count = 400
        for i in 0..<count {
            let length = 512 * (1 + i % 9)
            batch += NBDRequest(type: .write, handle: UInt64(i), offset: UInt64(i) * 8192, length: UInt32(length)).encode()
            batch += [UInt8](repeating: UInt8(truncatingIfNeeded: i &+ 1), count: length)
            if i % 7 == 0 { batch += NBDRequest(type: .read, handle: 10_000 + UInt64(i), offset: 0, length: 512).encode() }
        }
        // Sent in odd-sized pieces so requests straddle the server's reads.
        var at = 0
        while at < batch.count {
            let n = min(batch.count - at, 7919)
            c.send(Array(batch[at..<at + n]))
            at += n
        }
        var writes = 0
        while writes < count {
            guard let r = c.readReply() else { throw TestFailure("replies stopped after \(writes) writes") }
            #expect(r.error == 0)
            if r.handle < 10_000 { writes += 1 }
        }
        let bytes = s.disk.bytes
        for i in 0..<count {
            let length = 512 * (1 + i % 9)
            #expect(bytes[i * 8192..<i * 8192 + length].allSatisfy { $0 == UInt8(truncatingIfNeeded: i &+ 1) }, "write \(i)")
        }
    }

    /// Two contexts selected: one BLOCK_STATUS chunk each, with its own id, the last one final.
    @Test func blockStatusAnswersEverySelectedContext() throws {
        let s = try TestServer.start(Self.disk())
        defer { try? s.stop() }
        let c = try RawClient(socket: s.socket)
        try c.handshake()
        _ = try c.option(.structuredReply)
        let set = try c.option(.setMetaContext, NBDMetaContextRequest(exportName: "", queries: [MemoryDisk.dirtyContext, "base:allocation"]).encode())
        let ids = set.filter { $0.type == .metaContext }.map { r -> (UInt32, String) in
            var w = WireReader(r.data)
            return (w.u32()!, String(decoding: r.data.dropFirst(4), as: UTF8.self))
        }
        #expect(ids.count == 2 && Set(ids.map(\.0)).count == 2)
        _ = try c.option(.go, NBDInfoRequest(exportName: "", requests: []).encode())
        c.request(NBDRequest(type: .write, handle: 1, offset: 3 << 20, length: 512), data: [UInt8](repeating: 1, count: 512))
        #expect(c.readReply()?.error == 0)
        c.request(NBDRequest(flags: .reqOne, type: .blockStatus, handle: 2, offset: 3 << 20, length: 1 << 20))
        let chunks = c.readStructured()
        #expect(chunks.count == 2)
        #expect(chunks.map(\.done) == [false, true])
        for chunk in chunks {
            guard case .chunk(_, .blockStatus, 2, let p) = chunk else { throw TestFailure("\(chunk)") }
            var r = WireReader(p)
            let id = r.u32()!
            let name = ids.first { $0.0 == id }?.1
            #expect(p.count == 12)
            #expect(r.u32() == 64 << 10)
            #expect(r.u32() == (name == "base:allocation" ? 0 : NBDState.dirty))
        }
    }

    /// Random and mutated negotiations and requests from many short-lived clients, for a
    /// bounded time: the server never crashes and keeps serving.
    @Test func byteLevelFuzz() throws {
        let s = try TestServer.start(Self.disk(), negotiationTimeout: .milliseconds(500))
        defer { try? s.stop() }
        var valid: [UInt8] = [0, 0, 0, 3]
        valid += NBDOptionHeader.encode(.structuredReply)
        valid += NBDOptionHeader.encode(.setMetaContext, data: NBDMetaContextRequest(exportName: "", queries: ["base:allocation"]).encode())
        valid += NBDOptionHeader.encode(.go, data: NBDInfoRequest(exportName: "", requests: [.blockSize]).encode())
        let requests: [[UInt8]] = [
            NBDRequest(type: .read, handle: 1, offset: 0, length: 4096).encode(),
            NBDRequest(type: .write, handle: 2, offset: 8192, length: 512).encode() + [UInt8](repeating: 7, count: 512),
            NBDRequest(flags: .reqOne, type: .blockStatus, handle: 3, offset: 0, length: 1 << 20).encode(),
            NBDRequest(type: .writeZeroes, handle: 4, offset: 65536, length: 65536).encode(),
            NBDRequest(type: .flush, handle: 5, offset: 0, length: 0).encode(),
        ]
        let seconds = 3.0 * Double(TestScale.factor)
        let deadline = Date().addingTimeInterval(seconds)
        var iterations = 0
        var n: UInt64 = 0
        while Date() < deadline {
            let seed = TestScale.replaySeed ?? 0xF022 &+ n
            n += 1
            if TestScale.replaySeed != nil && n > 1 { break }
            var rng = SplitMix(seed: seed)
            var stream = valid
            for _ in 0..<Int(rng.next() % 6) { stream += requests[Int(rng.next() % UInt64(requests.count))] }
            switch rng.next() % 4 {
            case 0:  // pure noise
                stream = (0..<Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 1:  // flipped bytes
                for _ in 0...Int(rng.next() % 8) { stream[Int(rng.next() % UInt64(stream.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            case 2:  // cut short
                stream = Array(stream.prefix(Int(rng.next() % UInt64(stream.count))))
            default:  // random 32-bit fields overwritten (lengths, counts, offsets)
                for _ in 0...Int(rng.next() % 4) {
                    let at = Int(rng.next() % UInt64(stream.count - 4))
                    for i in 0..<4 { stream[at + i] = UInt8(truncatingIfNeeded: rng.next() >> (8 * UInt64(i))) }
                }
            }
            let c = try RawClient(socket: s.socket)
            c.setTimeout(0.02)
            _ = c.read(NBDLimits.greetingSize)
            c.send(stream)
            // Drain what the server answers; the client then vanishes.
            c.drain()
            iterations += 1
        }
        #expect(iterations > 20)
        try Self.stillServes(s)
    }
}
