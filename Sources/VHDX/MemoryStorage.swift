import VHDXFormat

/// Bytes in memory, for tests and fuzzing. Growth is capped so a hostile image cannot make a
/// replay or write allocate without bound.
package final class MemoryStorage: Storage {
    package var bytes: [UInt8]
    package let isWritable: Bool
    package let maxSize: UInt64
    package var name: String { "<memory>" }

    package init(_ bytes: [UInt8] = [], writable: Bool = true, maxSize: UInt64 = 1 << 30) {
        self.bytes = bytes
        self.isWritable = writable
        self.maxSize = maxSize
    }

    package func size() throws(VHDXError) -> UInt64 { UInt64(bytes.count) }

    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        guard offset <= UInt64(bytes.count), UInt64(buffer.count) <= UInt64(bytes.count) - offset else {
            throw VHDXError(.outOfBounds, "read of \(buffer.count) bytes at \(offset) runs past the end (\(bytes.count) bytes)", at: offset)
        }
        let start = Int(offset)
        bytes.withUnsafeBytes { src in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[start..<start + buffer.count]))
        }
    }

    package func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        guard isWritable else { throw VHDXError(.readOnly, "write to read-only memory storage", at: offset) }
        let (end, o) = offset.addingReportingOverflow(UInt64(buffer.count))
        guard !o, end <= maxSize else { throw VHDXError(.tooLarge, "write past the \(maxSize)-byte cap", at: offset) }
        if end > UInt64(bytes.count) { bytes.append(contentsOf: [UInt8](repeating: 0, count: Int(end) - bytes.count)) }
        let start = Int(offset)
        bytes.withUnsafeMutableBytes { dst in
            UnsafeMutableRawBufferPointer(rebasing: dst[start..<start + buffer.count]).copyMemory(from: buffer)
        }
    }

    package func resize(to size: UInt64) throws(VHDXError) {
        guard isWritable else { throw VHDXError(.readOnly, "resize of read-only memory storage") }
        guard size <= maxSize else { throw VHDXError(.tooLarge, "resize past the \(maxSize)-byte cap") }
        if size < UInt64(bytes.count) { bytes.removeLast(bytes.count - Int(size)) }
        else { bytes.append(contentsOf: [UInt8](repeating: 0, count: Int(size) - bytes.count)) }
    }

    package func synchronize() throws(VHDXError) {}
}
