import Testing
@testable import VHDXFormat

@Suite("Header")
struct HeaderTests {
    static func sample(seq: UInt64 = 5) -> Header {
        Header(sequenceNumber: seq, fileWriteGUID: GUID(text: "11111111-2222-3333-4444-555555555555")!,
               dataWriteGUID: GUID(text: "66666666-7777-8888-9999-aaaaaaaaaaaa")!, logGUID: .zero,
               logLength: 1 << 20, logOffset: 1 << 20)
    }

    @Test func byteExactRoundTrip() throws {
        var h = HeaderTests.sample()
        let bytes = h.encode()
        #expect(bytes.count == 4096)
        #expect(Array(bytes[0..<4]) == Array("head".utf8))
        #expect(Array(bytes[16..<32]) == h.fileWriteGUID.bytes)
        #expect(bytes[66] == 1 && bytes[67] == 0)  // Version 1
        let decoded = try Header.decodeValid(bytes, at: 65536)
        #expect(decoded == h)
        var again = decoded
        #expect(again.encode() == bytes)
    }

    @Test("any flipped byte is caught by the checksum", arguments: [0, 4, 8, 20, 40, 50, 64, 66, 70, 75, 100, 4095])
    func flippedByte(_ index: Int) {
        var h = HeaderTests.sample()
        var bytes = h.encode()
        bytes[index] ^= 0x40
        #expect(throws: FormatError.self) { try Header.decodeValid(bytes, at: 65536) }
    }

    @Test func versionMustBeOne() {
        var h = HeaderTests.sample()
        h.version = 2
        let bytes = h.encode()
        #expect(throws: FormatError(.unsupported, "header", field: "version", "")) { try Header.decodeValid(bytes, at: 0) }
    }

    @Test func currentHeaderChoice() throws {
        var a = HeaderTests.sample(seq: 7), b = HeaderTests.sample(seq: 9)
        let ab = a.encode(), bb = b.encode()
        #expect(try HeaderChoice(raw: [ab, bb]).slot == 1)
        #expect(try HeaderChoice(raw: [bb, ab]).slot == 0)
        var damaged = bb
        damaged[30] ^= 1
        let choice = try HeaderChoice(raw: [ab, damaged])
        #expect(choice.slot == 0)
        #expect(choice.problems[1]?.code == .badChecksum)
        // Equal sequence numbers: accepted only when identical (Disk2VHD).
        #expect(try HeaderChoice(raw: [ab, ab]).slot == 0)
        var c = HeaderTests.sample(seq: 7)
        c.dataWriteGUID = .random()
        #expect(throws: FormatError.self) { try HeaderChoice(raw: [ab, c.encode()]) }
        #expect(throws: FormatError.self) { try HeaderChoice(raw: [damaged, damaged]) }
    }

    @Test func logLocationRules() {
        var h = HeaderTests.sample()
        h.logOffset = 512 * 1024
        #expect(throws: FormatError.self) { try h.validateLogLocation() }
        h = HeaderTests.sample()
        h.logLength = 4096
        #expect(throws: FormatError.self) { try h.validateLogLocation() }
        h = HeaderTests.sample()
        h.logGUID = .random()
        h.logVersion = 1
        #expect(throws: FormatError(.unsupported, "header", field: "logVersion", "")) { try h.validateLogLocation() }
    }
}
