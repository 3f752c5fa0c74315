import Testing
import PropertyBased
import VHDXChangeTracking
import VHDXExport
import VHDXFormat

/// The digest block rule: what an export writes, its reader accepts, for every disk an export
/// can be of (1 sector to 64 TiB), every sector, block and granule size.
@Suite struct DigestBlockRuleTests {
    static let disk = GUID(text: "6d1f3a52-2c1e-4f0b-9a57-3b7c2e81d4a0")!

    static func id(_ epoch: UInt64) -> ChangeID {
        ChangeID(virtualDiskID: disk, trackingID: GUID(text: "0b9c7e21-5a43-4c8d-b1e6-2f3a4d5c6e7f")!, generation: 1, epoch: epoch)
    }

    /// The header an export of this disk writes (full, or incremental on `base`).
    static func header(size: UInt64, lss: UInt32, block: UInt32, granule: UInt64, base: StreamHeader? = nil) -> StreamHeader {
        StreamHeader.forExport(sourceDiskID: disk, baseID: base.map(\.targetID), targetID: id((base?.targetID.epoch ?? 0) + 1), base: base,
                               virtualSize: size, logicalSectorSize: lss, physicalSectorSize: 4096, blockSize: block, granule: granule,
                               created: 1_700_000_000_000)
    }

    /// Why the reader refuses `h` as a stream header or inside an image's origin record, or nil.
    static func refusal(_ h: StreamHeader) -> String? {
        do {
            guard try StreamHeader.decode(h.encode(), at: 64) == h else { return "the header decodes to something else" }
            let origin = ImageOrigin(holds: h, pending: h.isIncremental ? h : nil, dataWriteGUID: .random())
            guard try ImageOrigin.decode(origin.encode(), at: 0) == origin else { return "the origin record decodes to something else" }
        } catch {
            return "\(error)"
        }
        return nil
    }

    /// A disk size: log-uniform over 1 sector … 64 TiB, so small, odd and huge sizes all come.
    static func size(_ exponent: Int, _ mantissa: UInt64, lss: UInt32) -> UInt64 {
        let most = DigestBlockRule.maxVirtualSize / UInt64(lss)
        let e = min(UInt64(exponent), UInt64(63 - most.leadingZeroBitCount))
        let sectors = min(most, (1 << e) + mantissa % (1 << e))
        return sectors * UInt64(lss)
    }

    static let input = zip(Gen.int(in: 0...40), Gen.uint64(in: 0...UInt64.max), Gen.int(in: 0...1), Gen.int(in: 20...28), Gen.int(in: 9...28))

    @Test("property: an export's header (full, and incremental on a base of any other size) is one its reader accepts, 1 sector to 64 TiB")
    func writerNeverWritesWhatItsReaderRefuses() async {
        await propertyCheck(count: 2000, input: DigestBlockRuleTests.input, DigestBlockRuleTests.input) { a, b in
            let lss: UInt32 = a.2 == 0 ? 512 : 4096
            let block = UInt32(1) << a.3
            let granule = UInt64(1) << min(max(a.4, lss.trailingZeroBitCount), a.3)
            let size = DigestBlockRuleTests.size(a.0, a.1, lss: lss)
            let full = DigestBlockRuleTests.header(size: size, lss: lss, block: block, granule: granule)
            #expect(DigestBlockRuleTests.refusal(full) == nil, "full export of \(size) bytes, granule \(granule), sector \(lss): D \(full.digestBlock)")
            // An incremental after the disk was resized (grown or shrunk) since its base.
            let baseSize = DigestBlockRuleTests.size(b.0, b.1, lss: lss)
            let base = DigestBlockRuleTests.header(size: baseSize, lss: lss, block: block, granule: UInt64(1) << min(max(b.4, lss.trailingZeroBitCount), a.3))
            let inc = DigestBlockRuleTests.header(size: size, lss: lss, block: block, granule: granule, base: base)
            #expect(DigestBlockRuleTests.refusal(inc) == nil, "incremental of \(size) bytes on a \(baseSize)-byte base (D \(base.digestBlock)): D \(inc.digestBlock)")
            if DigestBlockRule.problem(base.digestBlock, virtualSize: size, sectorSize: lss) == nil {
                #expect(inc.digestBlock == base.digestBlock, "the base's D is kept while the rule allows it")
            }
        }
    }

    @Test("the sizes at the edges: 4, 16, 17 and 64 TiB and a sector either side; 64 TiB has 2^22 blocks of 16 MiB")
    func edges() {
        let tib: UInt64 = 1 << 40
        for lss: UInt32 in [512, 4096] {
            for size in [4 * tib, 16 * tib, 17 * tib, 64 * tib, UInt64(lss), 3 * UInt64(lss)] {
                for s in [size - UInt64(lss), size, size + UInt64(lss)] where s > 0 && s <= 64 * tib {
                    for granule: UInt64 in [UInt64(lss), 64 << 10, 4 << 20, 256 << 20] {
                        let h = DigestBlockRuleTests.header(size: s, lss: lss, block: 256 << 20, granule: granule)
                        #expect(DigestBlockRuleTests.refusal(h) == nil, "\(s) bytes, granule \(granule), sector \(lss): D \(h.digestBlock)")
                    }
                }
            }
        }
        let h = DigestBlockRuleTests.header(size: 64 * tib, lss: 512, block: 32 << 20, granule: 64 << 10)
        #expect(h.digestBlock == 16 << 20)
        #expect(DigestBlockRule.blocks(h.digestBlock, virtualSize: h.virtualSize) == 1 << 22)
        // Up to 4 TiB nothing changed: the 64 KiB granule doubled to at most 2^20 blocks.
        #expect(DigestBlockRuleTests.header(size: 64 << 30, lss: 512, block: 32 << 20, granule: 64 << 10).digestBlock == 64 << 10)
        #expect(DigestBlockRuleTests.header(size: 4 * tib, lss: 512, block: 32 << 20, granule: 64 << 10).digestBlock == 4 << 20)
        #expect(DigestBlockRuleTests.header(size: 17 * tib, lss: 512, block: 32 << 20, granule: 64 << 10).digestBlock == 8 << 20)
    }
}
