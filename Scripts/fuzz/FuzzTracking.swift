// libFuzzer entry point for the change-tracking region (Sources/VHDXChangeTracking): an image
// holding a tracking region is opened read-only in memory; the region's header page is decoded
// (TrackingHeader), every stored set it names is decoded (StoredSet / RunList), then a tracker is
// attached the way a read-only look at a chain layer does it (ChangeTracker.view, observe: false)
// and asked what the CLI asks: status, check findings, and the changes since every retained ID.
//
// The input is the image file or its sparse form (FuzzOpen.swift); the seeds are small images
// `vhdx track enable` made, so most of each input is the region's pages. Each input is run twice
// when it differs after a fix-up: once as given, and once with the image's own checksums
// (FuzzChecksums), every stored set's checksum in the tracking header and the header's CRC-32C
// recomputed, so mutations reach the checks behind them.

@testable import VHDX
@testable import VHDXChangeTracking
@testable import VHDXFormat

/// The most ranges one changes() answer may hold (the CLI pages with --max-ranges as well).
private let maxRanges = 4096

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTracking(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = sparseDecoded(UnsafeBufferPointer(start: data, count: size))
    exercise(bytes)
    if let fixed = TrackingFixup.fixed(bytes) {
        say("image with checksums fixed up")
        exercise(fixed)
    }
    return 0
}

private func open(_ bytes: [UInt8]) -> VHDXFile? {
    try? VHDXFile(storage: MemoryStorage(bytes, writable: false, maxSize: 64 << 20))
}

private func exercise(_ bytes: [UInt8]) {
    guard let image = open(bytes) else { say("not an image"); return }
    if let region = image.region(ChangeTracker.regionGUID) {
        decodeRegion(image, region)
    }
    do {
        guard let tracker = try ChangeTracker.view(of: image, observe: false) else { say("no tracking region"); return }
        let status = tracker.status
        say("tracker: generation \(status.generation), open epoch \(status.openEpoch), \(status.retainedIDs.count) retained, notes \(status.notes)")
        for f in tracker.checkFindings() { _ = f.description }
        let ids = tracker.retainedIDs
        for id in ids {
            do {
                let a = try tracker.changes(since: id, maxRanges: maxRanges)
                say("changes since \(id): \(a.ranges.count) ranges")
            } catch { say("changes since \(id): \(error)") }
        }
        if let first = ids.first, let last = ids.last {
            _ = try? tracker.changes(since: first, until: last, offset: 0, length: image.virtualSize / 2 + 1, maxRanges: maxRanges)
        }
    } catch {
        say("attach: \(error)")
    }
}

/// The header page and the stored sets it names, decoded directly.
private func decodeRegion(_ image: VHDXFile, _ region: RegionTableEntry) {
    guard let page = try? image.readMetadataPage(at: region.fileOffset) else { return }
    do {
        let header = try TrackingHeader(page: page, base: region.fileOffset, logicalSectorSize: UInt64(image.layout.logicalSectorSize),
                                        blockSize: image.blockSize)
        var sets = header.records.map { ($0.slot, $0.runCount, $0.flags, $0.checksum) }
        if header.currentSlot != TrackingHeader.noSlot {
            sets.append((header.currentSlot, header.currentRunCount, header.currentFlags, header.currentChecksum))
        }
        let limit = (header.trackedSize + header.geometry.granule - 1) / header.geometry.granule
        for (slot, count, flags, checksum) in sets {
            let n = StoredSet.byteCount(count: count, flags: flags)
            let at = region.fileOffset + header.geometry.slotOffset(slot)
            guard n > 0, let raw = try? image.readMetadataPage(at: at, count: (n + 4095) / 4096 * 4096) else { continue }
            do {
                let runs = try StoredSet.decode(raw, count: count, flags: flags, checksum: checksum, granuleLimit: limit, base: at)
                say("slot \(slot): \(runs.count) runs")
            } catch { say("slot \(slot): \(error)") }
        }
    } catch {
        say("tracking header: \(error)")
    }
}

/// Recomputes the checksums an image with a tracking region carries.
enum TrackingFixup {
    static func fixed(_ input: [UInt8]) -> [UInt8]? {
        var b = FuzzChecksums.fixed(input) ?? input
        guard let image = open(b), let region = image.region(ChangeTracker.regionGUID) else { return same(b, input) ? nil : b }
        let at = Int(region.fileOffset)
        let pageSize = TrackingGeometry.pageSize
        guard at + pageSize <= b.count else { return same(b, input) ? nil : b }
        storeCRC(&b, at + TrackingHeader.checksumOffset, CRC32C.checksum(Array(b[at..<at + pageSize]), zeroingFieldAt: TrackingHeader.checksumOffset))
        if var header = try? TrackingHeader(page: Array(b[at..<at + pageSize]), base: 0, logicalSectorSize: UInt64(image.layout.logicalSectorSize),
                                            blockSize: image.blockSize) {
            func sum(_ slot: UInt32, _ count: UInt32, _ flags: UInt32) -> UInt32? {
                let start = at + Int(header.geometry.slotOffset(slot))
                let n = StoredSet.byteCount(count: count, flags: flags)
                guard start + n <= b.count else { return nil }
                return CRC32C.checksum(b[start..<start + n])
            }
            for i in header.records.indices {
                let r = header.records[i]
                if let c = sum(r.slot, r.runCount, r.flags) { header.records[i].checksum = c }
            }
            if header.currentSlot != TrackingHeader.noSlot, let c = sum(header.currentSlot, header.currentRunCount, header.currentFlags) {
                header.currentChecksum = c
            }
            b.replaceSubrange(at..<at + pageSize, with: header.encode())
        }
        return same(b, input) ? nil : b
    }
}
