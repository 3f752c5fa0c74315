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

    /// The known GUIDs are constants built from integer literals; each must be the GUID the
    /// spec's text names (parsed here, in the test, not at run time in the library).
    @Test("the known GUIDs are the spec's", arguments: [
        (KnownGUID.batRegion, "2DC27766-F623-4200-9D64-115E9BFD4A08"),
        (KnownGUID.metadataRegion, "8B7CA206-4790-4B9A-B8FE-575F050F886E"),
        (KnownGUID.fileParameters, "CAA16737-FA36-4D43-B3B6-33F0AA44E76B"),
        (KnownGUID.virtualDiskSize, "2FA54224-CD1B-4876-B211-5DBED83BF4B8"),
        (KnownGUID.virtualDiskID, "BECA12AB-B2E6-4523-93EF-C309E000C746"),
        (KnownGUID.logicalSectorSize, "8141BF1D-A96F-4709-BA47-F233A8FAAB5F"),
        (KnownGUID.physicalSectorSize, "CDA348C7-445D-4471-9CC9-E9885251C556"),
        (KnownGUID.parentLocator, "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C"),
        (KnownGUID.parentLocatorTypeVHDX, "B04AEFB7-D19E-4A81-B789-25B8E9445913"),
    ])
    func knownGUIDs(_ c: (GUID, String)) {
        #expect(c.0 == GUID(text: c.1))
        #expect(c.0.description == c.1.lowercased())
    }

    /// A GUID is 16 bytes held inline; bytes of any other count are refused (nil), never a trap,
    /// and the order is the on-disk bytes' order.
    @Test("a GUID is a 16-byte value; bytes round-trip; wrong counts give nil")
    func guidValue() throws {
        #expect(MemoryLayout<GUID>.size == 16)
        let raw: [UInt8] = (0..<16).map { UInt8($0 * 17) }
        let g = try #require(GUID(bytes: raw))
        #expect(g.bytes == raw)
        #expect(GUID(bytes: raw[...]) == g)
        #expect(GUID(bytes: raw.dropLast()) == nil)
        #expect(GUID(bytes: raw + [0]) == nil)
        #expect(GUID(bytes: []) == nil)
        #expect(GUID.zero.bytes == [UInt8](repeating: 0, count: 16) && GUID.zero.isZero && !g.isZero)
        var r = ByteReader(raw, structure: "test")
        #expect(try r.readGUID("id") == g)
        var short = ByteReader(Array(raw.prefix(15)), structure: "test")
        #expect(throws: FormatError.self) { try short.readGUID("id") }
        // Order: lexicographic over the on-disk bytes, as before.
        var rng = SystemRandomNumberGenerator()
        let many = (0..<200).map { _ in GUID.random(using: &rng) }
        #expect(many.sorted().map(\.bytes) == many.map(\.bytes).sorted { $0.lexicographicallyPrecedes($1) })
        for x in many {
            #expect(x.bytes[7] >> 4 == 4 && x.bytes[8] >> 6 == 2, "version 4, RFC variant: \(x)")
        }
    }

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
