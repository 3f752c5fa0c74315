import Testing
@testable import VHDXFormat

@Suite("Primitives")
struct PrimitivesTests {
    @Test func crc32cCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        // Incremental update equals one pass.
        let a = Array("1234".utf8), b = Array("56789".utf8)
        #expect(CRC32C.update(CRC32C.checksum(a), b) == 0xE306_9283)
    }

    @Test("the buffer paths (CPU instruction and slicing-by-8) equal the byte-wise CRC at every length and alignment")
    func crc32cBufferPaths() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let bytes: [UInt8] = (0..<600).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        bytes.withUnsafeBytes { all in
            for start in 0..<9 {
                for length in 0..<(all.count - start) where length < 80 || length % 37 == 0 {
                    let slice = UnsafeRawBufferPointer(rebasing: all[start..<start + length])
                    let expected = CRC32C.checksum(Array(slice))
                    #expect(CRC32C.update(0, slice) == expected, "length \(length) at \(start)")
                    #expect(CRC32C.software(0, slice) == expected, "length \(length) at \(start)")
                    #expect(CRC32C.update(CRC32C.update(0, UnsafeRawBufferPointer(rebasing: slice[0..<length / 2])),
                                          UnsafeRawBufferPointer(rebasing: slice[(length / 2)...])) == expected)
                }
            }
        }
    }

    @Test("GUID text to on-disk bytes (mixed-endian)", arguments: [
        ("2DC27766-F623-4200-9D64-115E9BFD4A08", "6677c22d23f600429d64115e9bfd4a08"),
        ("8B7CA206-4790-4B9A-B8FE-575F050F886E", "06a27c8b90479a4bb8fe575f050f886e"),
        ("CAA16737-FA36-4D43-B3B6-33F0AA44E76B", "3767a1ca36fa434db3b633f0aa44e76b"),
        ("B04AEFB7-D19E-4A81-B789-25B8E9445913", "b7ef4ab09ed1814ab78925b8e9445913"),
    ])
    func guidLayout(_ c: (String, String)) throws {
        let g = try #require(GUID(text: c.0))
        #expect(hex(g.bytes) == c.1)
        #expect(g.description == c.0.lowercased())
        #expect(GUID(text: "{" + c.0.lowercased() + "}") == g)
    }

    @Test("malformed GUID text is rejected", arguments: ["", "{}", "2DC27766-F623-4200-9D64-115E9BFD4A0", "2DC27766F623-4200-9D64-115E9BFD4A08X", "ZZC27766-F623-4200-9D64-115E9BFD4A08"])
    func guidRejects(_ s: String) { #expect(GUID(text: s) == nil) }

    @Test func readerNeverTrapsPastEnd() {
        var r = ByteReader([1, 2, 3], base: 100, structure: "x")
        #expect(throws: FormatError(.truncated, "x", field: "f", "")) { try r.readUInt32("f") }
        #expect(r.position == 0)
        #expect((try? r.readUInt16("g")) == 0x0201)
    }

    @Test func littleEndianRoundTrip() throws {
        var w = ByteWriter()
        w.write(UInt16(0xBEEF)); w.write(UInt32(0xDEAD_BEEF)); w.write(UInt64(0x0123_4567_89AB_CDEF))
        #expect(w.bytes[0] == 0xEF && w.bytes[1] == 0xBE)
        var r = ByteReader(w.bytes, structure: "t")
        #expect(try r.readUInt16("a") == 0xBEEF)
        #expect(try r.readUInt32("b") == 0xDEAD_BEEF)
        #expect(try r.readUInt64("c") == 0x0123_4567_89AB_CDEF)
    }
}
