import VHDXFormat

extension LogEntry.Update {
    /// Splits a 4 KiB-aligned byte image into 4 KiB data updates.
    static func sectors(of bytes: [UInt8], at fileOffset: UInt64) -> [LogEntry.Update] {
        stride(from: 0, to: bytes.count, by: 4096).map {
            .data(fileOffset: fileOffset + UInt64($0), bytes: Array(bytes[$0..<min($0 + 4096, bytes.count)]))
        }
    }
}
