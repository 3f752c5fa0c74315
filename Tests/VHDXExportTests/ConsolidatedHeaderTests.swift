import Testing
import VHDX
import VHDXChangeTracking
import VHDXExport
import VHDXFormat

/// Version 3 of the stream header: a consolidated full stream names the export it stands for
/// at bytes 208–223. Every other stream is still written as version 2.
@Suite struct ConsolidatedHeaderTests {
    static func full() -> StreamHeader {
        var h = StreamHeaderVersionTests.header()
        h.baseID = nil
        return h
    }

    @Test("a consolidated full is version 3 with its stands-for id; any other header stays version 2")
    func roundTrip() throws {
        var h = Self.full()
        #expect(h.encode()[0] == 2 && h.encode()[208..<256].allSatisfy { $0 == 0 })
        h.standsFor = .random()
        let bytes = h.encode()
        #expect(bytes[0] == 3)
        #expect(Array(bytes[208..<224]) == h.standsFor.bytes)
        #expect(try StreamHeader.decode(bytes, at: 0) == h)
        #expect(try StreamHeader.decode(bytes, at: 0).isConsolidated)
    }

    @Test("refused: version 3 without a stands-for id, on an incremental, naming itself; bytes after it; a version 2 header with one")
    func refused() throws {
        var h = Self.full()
        h.standsFor = .random()
        let good = h.encode()
        var zero = good
        zero.replaceSubrange(208..<224, with: [UInt8](repeating: 0, count: 16))
        #expect(throws: FormatError.self) { try StreamHeader.decode(zero, at: 0) }
        var own = good
        own.replaceSubrange(208..<224, with: h.streamID.bytes)
        #expect(throws: FormatError.self) { try StreamHeader.decode(own, at: 0) }
        var inc = StreamHeaderVersionTests.header()
        inc.standsFor = .random()
        #expect(throws: FormatError.self) { try StreamHeader.decode(inc.encode(), at: 0) }
        var tail = good
        tail[230] = 1
        #expect(throws: FormatError.self) { try StreamHeader.decode(tail, at: 0) }
        var v2 = good
        v2[0] = 2
        #expect(throws: FormatError.self) { try StreamHeader.decode(v2, at: 0) }
        var v4 = good
        v4[0] = 4
        #expect(throws: FormatError.self) { try StreamHeader.decode(v4, at: 0) }
    }
}
