import VHDXFormat

/// Positional byte storage under an image: a file, memory, or a replay overlay.
///
/// Reads are exact: a read that cannot be satisfied in full throws, so a BAT entry that points
/// past the end of the file becomes a clear error instead of short data.
package protocol Storage: AnyObject {
    func size() throws(VHDXError) -> UInt64
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError)
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError)
    func resize(to size: UInt64) throws(VHDXError)
    func synchronize() throws(VHDXError)
    var isWritable: Bool { get }
    var name: String { get }
    /// Releases a range that nothing references any more, so it reads as zeros (and, on a
    /// file, stops using disk space). Stale data left there would otherwise be a leak.
    func discard(offset: UInt64, length: UInt64) throws(VHDXError)
}

extension Storage {
    package func discard(offset: UInt64, length: UInt64) throws(VHDXError) {
        try writeZeros(offset: offset, length: length)
    }

    package func writeZeros(offset: UInt64, length: UInt64) throws(VHDXError) {
        let zeros = [UInt8](repeating: 0, count: Int(min(length, 1 << 20)))
        var done: UInt64 = 0
        while done < length {
            let n = Int(min(UInt64(zeros.count), length - done))
            try typed { try zeros.withUnsafeBytes { z in try write(UnsafeRawBufferPointer(rebasing: z[0..<n]), at: offset + done) } }
            done += UInt64(n)
        }
    }

    package func read(count: Int, at offset: UInt64) throws(VHDXError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try typed { try out.withUnsafeMutableBytes { b in try read(into: b, at: offset) } }
        return out
    }

    package func write(_ bytes: [UInt8], at offset: UInt64) throws(VHDXError) {
        try typed { try bytes.withUnsafeBytes { b in try write(b, at: offset) } }
    }
}
