// libFuzzer entry point for the export origin record (Sources/VHDXExport/Format/ImageOrigin.swift):
// the 4 KiB page an exported or restored image keeps in a region of its own. The input is the page
// (cut or zero-padded to 4 KiB); it is decoded as given and with its CRC-32C recomputed (without
// that almost every mutation dies at the checksum), and a record that decodes must encode to bytes
// that decode to the same record.

@testable import VHDXExport
@testable import VHDXFormat

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOrigin(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var page = inputBytes(data, min(size, ImageOrigin.pageSize))
    page += [UInt8](repeating: 0, count: ImageOrigin.pageSize - page.count)
    check(page)
    var fixed = page
    storeCRC(&fixed, ImageOrigin.pageSize - 4, CRC32C.checksum(fixed[0..<ImageOrigin.pageSize - 4]))
    if fixed != page { check(fixed) }
    // A page of another length is refused, not read past or trapped on.
    _ = try? ImageOrigin.decode(inputBytes(data, size), at: 0)
    return 0
}

private func check(_ page: [UInt8]) {
    do {
        let origin = try ImageOrigin.decode(page, at: 1 << 20)
        say("origin: holds \(origin.holds.targetID), pending \(origin.pending.map { "\($0.targetID)" } ?? "none")")
        guard (try? ImageOrigin.decode(origin.encode(), at: 0)) == origin else { fatalError("origin record does not round-trip") }
    } catch {
        say("origin: \(error)")
    }
}
