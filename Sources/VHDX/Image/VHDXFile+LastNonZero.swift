import VHDXFormat

extension VHDXFile {
    /// The offset of the last non-zero byte in [from, to), reading only allocated blocks.
    func lastNonZero(from: UInt64, to: UInt64) throws(VHDXError) -> UInt64? {
        guard from < to else { return nil }
        var blockIndex = (to - 1) / blockSize
        let firstBlock = from / blockSize
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let entry = try payloadEntry(block: blockIndex)
            if entry.state == PayloadBlockState.fullyPresent.rawValue {
                let bStart = max(from, blockIndex * blockSize)
                var end = min(to, (blockIndex + 1) * blockSize)
                while end > bStart {
                    let n = min(UInt64(buffer.count), end - bStart)
                    let start = end - n
                    try typed { try buffer.withUnsafeMutableBytes { b in try read(into: UnsafeMutableRawBufferPointer(rebasing: b[0..<Int(n)]), at: start) } }
                    if let i = buffer[0..<Int(n)].lastIndex(where: { $0 != 0 }) { return start + UInt64(i) }
                    end = start
                }
            }
            if blockIndex == firstBlock { return nil }
            blockIndex -= 1
        }
    }
}
