import Testing
import VHDX
import VHDXChangeTracking
import VHDXExport
import VHDXFormat

/// The stream header carries the change IDs' seal tags (version 2, bytes 192–207); streams of
/// earlier builds (version 1: no tags, those bytes zero) are still read, their IDs untagged.
@Suite struct StreamHeaderVersionTests {
    static func header() -> StreamHeader {
        let disk = GUID.random(), tracking = GUID.random()
        return StreamHeader.forExport(sourceDiskID: disk,
                                      baseID: ChangeID(virtualDiskID: disk, trackingID: tracking, generation: 1, epoch: 4, tag: 0x1234_5678_9abc_def0),
                                      targetID: ChangeID(virtualDiskID: disk, trackingID: tracking, generation: 1, epoch: 5, tag: 0x0fed_cba9_8765_4321),
                                      base: nil, virtualSize: 1 << 30, logicalSectorSize: 512, physicalSectorSize: 4096, blockSize: 32 << 20,
                                      granule: 65536, created: 1_765_000_000_000)
    }

    @Test("version 2 keeps both tags")
    func roundTrip() throws {
        let h = Self.header()
        let bytes = h.encode()
        #expect(bytes[0] == 2)
        let d = try StreamHeader.decode(bytes, at: 0)
        #expect(d == h)
        #expect(d.baseID?.tag == 0x1234_5678_9abc_def0 && d.targetID.tag == 0x0fed_cba9_8765_4321)
    }

    @Test("version 1 is read with untagged IDs; a version 1 header with bytes in the tag fields is refused")
    func version1() throws {
        var h = Self.header()
        var bytes = h.encode()
        bytes[0] = 1
        #expect(throws: FormatError.self) { try StreamHeader.decode(bytes, at: 0) }
        bytes.replaceSubrange(192..<208, with: [UInt8](repeating: 0, count: 16))
        let d = try StreamHeader.decode(bytes, at: 0)
        h.baseID?.tag = 0
        h.targetID.tag = 0
        #expect(d == h)
        // A tag without a base ID is refused in version 2.
        var full = Self.header()
        full.baseID = nil
        var fb = full.encode()
        fb[192] = 1
        #expect(throws: FormatError.self) { try StreamHeader.decode(fb, at: 0) }
        bytes[0] = 3
        #expect(throws: FormatError.self) { try StreamHeader.decode(bytes, at: 0) }
    }
}
