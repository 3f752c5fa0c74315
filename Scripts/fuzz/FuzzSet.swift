// libFuzzer entry point for the set file (.vhds; Sources/VHDXSets/SetFile.swift and
// Format/SetRecordCodec.swift): SetFile(storage:) over the input as the whole file (both copies,
// read-only in memory), and SetRecordCodec.decode on its first copy. A record that decodes must
// encode to bytes that decode to the same record.
//
// The input is the file, or its sparse form (FuzzOpen.swift: copy B sits 512 KiB into the file).
// Each input is run twice when it differs after a fix-up: once as given, and once with the
// CRC-32C of each copy whose signature and stated length are there recomputed.

@testable import VHDX
@testable import VHDXFormat
@testable import VHDXSets

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSet(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = sparseDecoded(UnsafeBufferPointer(start: data, count: size))
    exercise(bytes)
    var fixed = bytes
    for offset in SetFileLayout.slotOffsets.map(Int.init) where offset + 28 <= fixed.count {
        guard let length = try? SetRecordCodec.statedLength(Array(fixed[offset..<offset + 28]), at: UInt64(offset)),
              offset + length <= fixed.count else { continue }
        storeCRC(&fixed, offset + SetFileLayout.checksumOffset,
                 CRC32C.checksum(Array(fixed[offset..<offset + length]), zeroingFieldAt: SetFileLayout.checksumOffset))
    }
    if !same(fixed, bytes) {
        say("set file with checksums fixed up")
        exercise(fixed)
    }
    return 0
}

private func exercise(_ bytes: [UInt8]) {
    do {
        let file = try SetFile(storage: MemoryStorage(bytes, writable: false, maxSize: 64 << 20))
        say("set file: copy \(file.currentSlot), sequence \(file.record.sequence), \(file.record.snapshots.count) snapshots; other copy: \(file.otherCopyProblem ?? "fine")")
        roundTrip(file.record)
    } catch {
        say("set file: \(error)")
    }
    if let record = try? SetRecordCodec.decode(bytes, at: 0) { roundTrip(record) }
}

private func roundTrip(_ record: SetRecord) {
    let again = try? SetRecordCodec.decode(SetRecordCodec.encode(record), at: 0)
    guard again == record else { fatalError("set record does not round-trip: \(record) became \(again.map { "\($0)" } ?? "undecodable")") }
}
