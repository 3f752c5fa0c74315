import Testing
import VHDXTestSupport
@testable import VHDXServe

/// The pure wire layer: options and requests decoded as sent, replies encoded as proto.md lays
/// them out, and malformed input answered with an error value, never a trap.
@Suite struct ProtocolWireTests {
    @Test func optionHeaderRoundTrip() {
        let bytes = NBDOptionHeader.encode(.go, data: [1, 2, 3])
        #expect(bytes.count == 19)
        let h = bytes.withUnsafeBytes { NBDOptionHeader.decode($0) }
        #expect(h == NBDOptionHeader(option: .go, length: 3))
        var bad = bytes
        bad[0] ^= 0xFF
        #expect(bad.withUnsafeBytes { NBDOptionHeader.decode($0) } == nil)
    }

    @Test func infoAndGoRoundTrip() throws {
        let request = NBDInfoRequest(exportName: "disk ü", requests: [.blockSize, .name, NBDInfoType(rawValue: 77)])
        for option in [NBDOptionType.info, .go] {
            let decoded = try NBDOptionRequest.decode(option, data: request.encode()).get()
            #expect(decoded == (option == .info ? .info(request) : .go(request)))
        }
    }

    @Test func metaContextRoundTrip() throws {
        let request = NBDMetaContextRequest(exportName: "", queries: ["base:allocation", "qemu:dirty-bitmap:", ""])
        #expect(try NBDOptionRequest.decode(.setMetaContext, data: request.encode()).get() == .setMetaContext(request))
        #expect(try NBDOptionRequest.decode(.listMetaContext, data: request.encode()).get() == .listMetaContext(request))
    }

    @Test func malformedOptionsAreInvalid() {
        func invalid(_ option: NBDOptionType, _ data: [UInt8]) -> Bool {
            if case .failure = NBDOptionRequest.decode(option, data: data) { return true }
            return false
        }
        // Name length beyond the data, a count that does not fill the rest, trailing bytes.
        #expect(invalid(.go, [0, 0, 0, 9, 65]))
        #expect(invalid(.go, [0, 0, 0, 1, 65, 0, 2, 0, 3]))
        #expect(invalid(.info, [0, 0, 0, 0]))
        #expect(invalid(.setMetaContext, [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, 98]))
        #expect(invalid(.listMetaContext, [0, 0, 0, 0, 0, 0, 0, 0, 7]))
        #expect(invalid(.setMetaContext, [0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]))
        // Not UTF-8, or a NUL: not a protocol string.
        #expect(invalid(.exportName, [0xC3, 0x28]))
        #expect(invalid(.exportName, [65, 0, 66]))
        #expect(invalid(.go, [0, 0, 0, 2, 0xFF, 0xFE, 0, 0]))
        // A name over 4096 bytes.
        #expect(invalid(.exportName, [UInt8](repeating: 65, count: 4097)))
        // Options that carry no data.
        #expect(invalid(.list, [1]))
        #expect(invalid(.startTLS, [1]))
        #expect(invalid(.structuredReply, [1]))
        // ABORT's data is ignored; unknown options are unsupported, not invalid.
        #expect(try! NBDOptionRequest.decode(.abort, data: [1, 2]).get() == .abort)
        #expect(try! NBDOptionRequest.decode(NBDOptionType(rawValue: 4242), data: [9]).get() == .unsupported(NBDOptionType(rawValue: 4242)))
        #expect(try! NBDOptionRequest.decode(.extendedHeaders, data: []).get() == .unsupported(.extendedHeaders))
    }

    /// Random data for every option type: an answer each time, never a trap.
    @Test func randomOptionDataNeverTraps() {
        for seed in TestScale.seeds(4, base: 0x0917) {
            var rng = SplitMix(seed: seed)
            for _ in 0..<3000 {
                let option = NBDOptionType(rawValue: UInt32(rng.next() % 13))
                let count = Int(rng.next() % 40)
                var data = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                // Plausible lengths now and then, so the decoders get past their first field.
                if count >= 4 && rng.next() % 2 == 0 { data[0] = 0; data[1] = 0; data[2] = 0; data[3] = UInt8(rng.next() % 8) }
                _ = NBDOptionRequest.decode(option, data: data)
            }
        }
    }

    @Test func requestRoundTrip() {
        let r = NBDRequest(flags: [.fua, .noHole], type: .writeZeroes, handle: 0x0102_0304_0506_0708, offset: 1 << 40, length: 0xFFFF_FFFF)
        let bytes = r.encode()
        #expect(bytes.count == NBDLimits.requestSize)
        #expect(bytes.withUnsafeBytes { NBDRequest.decode($0) } == r)
        var bad = bytes
        bad[3] ^= 1
        #expect(bad.withUnsafeBytes { NBDRequest.decode($0) } == nil)
        #expect(NBDRequest(type: .write, handle: 1, offset: 0, length: 9).payloadLength == 9)
        #expect(NBDRequest(type: .read, handle: 1, offset: 0, length: 9).payloadLength == 0)
    }

    @Test func greetingAndExportNameReply() {
        let g = NBDHandshake.greeting([.fixedNewstyle, .noZeroes])
        #expect(g == Array("NBDMAGICIHAVEOPT".utf8) + [0, 3])
        #expect(NBDHandshake.exportNameReply(size: 1 << 20, flags: [.hasFlags], noZeroes: false).count == 134)
        #expect(NBDHandshake.exportNameReply(size: 1 << 20, flags: [.hasFlags], noZeroes: true) == [0, 0, 0, 0, 0, 0x10, 0, 0, 0, 1])
    }

    @Test func optionRepliesLayout() {
        let info = NBDOptionReply.infoExport(.go, size: 0x1234, flags: [.hasFlags, .readOnly]).encode()
        let h = info.withUnsafeBytes { NBDOptionReply.decodeHeader($0) }
        #expect(h?.option == .go && h?.type == .info && h?.length == 12)
        #expect(Array(info[20...]) == [0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 3])
        let bs = NBDOptionReply.infoBlockSize(.info, minimum: 512, preferred: 4096, maximum: 32 << 20).encode()
        #expect(Array(bs[20...]) == [0, 3, 0, 0, 2, 0, 0, 0, 0x10, 0, 0x02, 0, 0, 0])
        let server = NBDOptionReply.server(name: "ab", description: "d").encode()
        #expect(Array(server[20...]) == [0, 0, 0, 2, 97, 98, 100])
        let meta = NBDOptionReply.metaContext(.setMetaContext, id: 7, name: "base:allocation").encode()
        #expect(Array(meta[20..<24]) == [0, 0, 0, 7])
        #expect(String(decoding: meta[24...], as: UTF8.self) == "base:allocation")
        let err = NBDOptionReply.error(.go, .errUnknown, "nope").encode()
        #expect(err.withUnsafeBytes { NBDOptionReply.decodeHeader($0) }?.type == .errUnknown)
        #expect(NBDOptionReplyType.errUnknown.isError && !NBDOptionReplyType.ack.isError)
        // A message over 4096 bytes is cut, on a character boundary.
        let long = NBDOptionReply.error(.go, .errInvalid, String(repeating: "é", count: 3000)).encode()
        #expect(long.count == 20 + 4096)
    }

    @Test func transmissionRepliesLayout() {
        let simple = NBDReply.simple(handle: 9, error: 22)
        #expect(simple.withUnsafeBytes { NBDReplyHeader.decode($0) }?.header == .simple(error: 22, handle: 9))
        let data = NBDReply.offsetDataPrefix(handle: 5, offset: 4096, dataLength: 512, done: true)
        #expect(data.count == NBDReply.offsetDataPrefixSize)
        #expect(data.withUnsafeBytes { NBDReplyHeader.decode($0) }?.header == .structured(flags: .done, type: .offsetData, handle: 5, length: 520))
        let hole = NBDReply.offsetHole(handle: 5, offset: 0, length: 4096, done: false)
        #expect(hole.withUnsafeBytes { NBDReplyHeader.decode($0) }?.header == .structured(flags: [], type: .offsetHole, handle: 5, length: 12))
        let bs = NBDReply.blockStatus(handle: 1, contextID: 3, extents: [.init(length: 512, flags: 3), .init(length: 1024, flags: 0)], done: true)
        #expect(bs.count == 20 + 4 + 16)
        #expect(Array(bs[20...]) == [0, 0, 0, 3, 0, 0, 2, 0, 0, 0, 0, 3, 0, 0, 4, 0, 0, 0, 0, 0])
        let e = NBDReply.errorChunk(handle: 2, error: 5, message: "io", offset: 77)
        #expect(e.withUnsafeBytes { NBDReplyHeader.decode($0) }?.header == .structured(flags: .done, type: .errorOffset, handle: 2, length: 6 + 2 + 8))
        #expect(NBDReplyType.errorOffset.isError && !NBDReplyType.blockStatus.isError)
        #expect(NBDReply.none(handle: 4).withUnsafeBytes { NBDReplyHeader.decode($0) }?.header == .structured(flags: .done, type: .none, handle: 4, length: 0))
        #expect([UInt8](repeating: 0, count: 30).withUnsafeBytes { NBDReplyHeader.decode($0) } == nil)
    }

    private func terms(readOnly: Bool = false, structured: Bool = true, contexts: Int = 1, fastZero: Bool = true) -> NBDExportTerms {
        NBDExportTerms(size: 1 << 20, readOnly: readOnly, minimumBlockSize: 512, maximumPayload: 32 << 20, canTrim: true,
                       canWriteZeroes: true, canFastZero: fastZero, canMultiConn: false, structuredReplies: structured, metaContextCount: contexts)
    }

    @Test func requestChecks() {
        let t = terms()
        func code(_ r: NBDRequest, _ t: NBDExportTerms) -> ServeError.Code? { t.check(r)?.code }
        #expect(code(NBDRequest(type: .read, handle: 1, offset: 0, length: 4096), t) == nil)
        #expect(code(NBDRequest(type: .read, handle: 1, offset: (1 << 20) - 512, length: 1024), t) == .invalid)
        #expect(code(NBDRequest(type: .write, handle: 1, offset: (1 << 20) - 512, length: 1024), t) == .noSpace)
        #expect(code(NBDRequest(type: .writeZeroes, handle: 1, offset: 1 << 20, length: 512), t) == .noSpace)
        #expect(code(NBDRequest(type: .read, handle: 1, offset: .max - 100, length: 4096), t) == .invalid)
        #expect(code(NBDRequest(type: .read, handle: 1, offset: 100, length: 512), t) == .invalid)
        #expect(code(NBDRequest(type: .write, handle: 1, offset: 0, length: 100), t) == .invalid)
        #expect(code(NBDRequest(type: .write, handle: 1, offset: 0, length: 100), terms(readOnly: true)) == .notPermitted)
        #expect(code(NBDRequest(type: .trim, handle: 1, offset: 0, length: 512), terms(readOnly: true)) == .notPermitted)
        #expect(code(NBDRequest(type: .writeZeroes, handle: 1, offset: 0, length: 512), terms(readOnly: true)) == .notPermitted)
        #expect(code(NBDRequest(type: .read, handle: 1, offset: 0, length: 512), terms(readOnly: true)) == nil)
        var big = t
        big.size = 1 << 30
        #expect(code(NBDRequest(type: .read, handle: 1, offset: 0, length: (32 << 20) + 512), big) == .invalid)
        // Lengths not carried as payload are not capped.
        #expect(code(NBDRequest(type: .trim, handle: 1, offset: 0, length: (32 << 20) + 512), big) == nil)
        #expect(code(NBDRequest(flags: .fastZero, type: .writeZeroes, handle: 1, offset: 0, length: (32 << 20) + 512), big) == nil)
        #expect(code(NBDRequest(type: .writeZeroes, handle: 1, offset: 0, length: (32 << 20) + 512), big) == .invalid)
        // Flags valid only for other commands, or not negotiated.
        #expect(code(NBDRequest(flags: .reqOne, type: .read, handle: 1, offset: 0, length: 512), t) == .invalid)
        #expect(code(NBDRequest(flags: .dontFragment, type: .read, handle: 1, offset: 0, length: 512), t) == nil)
        #expect(code(NBDRequest(flags: .dontFragment, type: .read, handle: 1, offset: 0, length: 512), terms(structured: false)) == .invalid)
        #expect(code(NBDRequest(flags: .fastZero, type: .writeZeroes, handle: 1, offset: 0, length: 512), terms(fastZero: false)) == .invalid)
        #expect(code(NBDRequest(flags: NBDCommandFlags(rawValue: 0x8000), type: .read, handle: 1, offset: 0, length: 512), t) == .invalid)
        #expect(code(NBDRequest(flags: .fua, type: .read, handle: 1, offset: 0, length: 512), t) == nil)
        // FLUSH has no range; BLOCK_STATUS needs a selected context and a length.
        #expect(code(NBDRequest(type: .flush, handle: 1, offset: 0, length: 0), t) == nil)
        #expect(code(NBDRequest(type: .flush, handle: 1, offset: 512, length: 0), t) == .invalid)
        #expect(code(NBDRequest(flags: .reqOne, type: .blockStatus, handle: 1, offset: 0, length: 512), t) == nil)
        #expect(code(NBDRequest(type: .blockStatus, handle: 1, offset: 0, length: 512), terms(contexts: 0)) == .invalid)
        #expect(code(NBDRequest(type: .blockStatus, handle: 1, offset: 0, length: 0), t) == .invalid)
        #expect(code(NBDRequest(type: NBDCommandType(rawValue: 99), handle: 1, offset: 0, length: 0), t) == .invalid)
        #expect(code(NBDRequest(type: .resize, handle: 1, offset: 0, length: 0), t) == .invalid)
    }

    @Test func unalignedTailOfAnOddSizedExportIsReachable() {
        var t = terms()
        t.size = (1 << 20) + 100
        #expect(t.check(NBDRequest(type: .read, handle: 1, offset: 1 << 20, length: 100)) == nil)
        #expect(t.check(NBDRequest(type: .read, handle: 1, offset: 1 << 20, length: 50))?.code == .invalid)
    }

    @Test func transmissionFlags() {
        #expect(terms(readOnly: true).transmissionFlags == [.hasFlags, .readOnly, .sendCache, .sendDF])
        var t = terms(structured: false)
        t.canMultiConn = true
        #expect(t.transmissionFlags == [.hasFlags, .sendFlush, .sendFUA, .sendTrim, .sendWriteZeroes, .sendFastZero, .sendCache, .canMultiConn])
    }

    @Test func metaContextQueries() {
        let all = ["base:allocation", "qemu:dirty-bitmap:a", "qemu:dirty-bitmap:b"]
        func lookup(_ q: String) -> [String] {
            q.isEmpty ? all : q.hasSuffix(":") ? all.filter { $0.hasPrefix(q) } : all.filter { $0 == q }
        }
        #expect(NBDMetaContextQuery.list([], lookup: lookup) == all)
        #expect(NBDMetaContextQuery.list(["qemu:dirty-bitmap:", "qemu:dirty-bitmap:a"], lookup: lookup) == ["qemu:dirty-bitmap:a", "qemu:dirty-bitmap:b"])
        #expect(NBDMetaContextQuery.select(["base:", "qemu:dirty-bitmap:", "base:allocation", "base:allocation", "nope", ":x", "x-y:z"], lookup: lookup) == ["base:allocation"])
        #expect(NBDMetaContextQuery.select([], lookup: lookup) == [])
    }

    @Test func blockStatusClipping() {
        let e = [BlockStatusExtent(length: 0, flags: 1), .init(length: 4096, flags: 3), .init(length: 8192, flags: 0)]
        #expect(NBDJob.clip(e, to: 6144, one: false) == [.init(length: 4096, flags: 3), .init(length: 2048, flags: 0)])
        #expect(NBDJob.clip(e, to: 2048, one: false) == [.init(length: 2048, flags: 3)])
        #expect(NBDJob.clip(e, to: 65536, one: true) == [.init(length: 4096, flags: 3)])
        #expect(NBDJob.clip([], to: 512, one: false).isEmpty)
    }

    @Test func uris() {
        #expect(NBDURI.make(endpoint: .unix(path: "/tmp/a b.sock"), exportName: "disk", tls: false) == "nbd+unix:///disk?socket=/tmp/a%20b.sock")
        #expect(NBDURI.make(endpoint: .tcp(host: "127.0.0.1", port: 10809), exportName: "a/b é", tls: true) == "nbds://127.0.0.1:10809/a/b%20%C3%A9")
        #expect(NBDURI.make(endpoint: .tcp(host: "::1", port: 1), exportName: "", tls: false) == "nbd://[::1]:1/")
    }
}
