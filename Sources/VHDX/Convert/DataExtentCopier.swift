/// Copies every data extent of an image (through its chain) into a new file, each piece where
/// `place` puts it: the same offset for a raw image, a block of a VHDX being built for an
/// export. In the kernel where it can (`CopyOffload`); the kernel copies what the file stores,
/// zeros included, where the read/write fallback would leave holes. So a fixed layer, whose
/// blocks are mostly preallocated zeros (Hyper-V writes them out), is read here instead, and so
/// is a layer whose reads go through an in-memory log replay (its file does not hold what the
/// replay shows). The destination must read as zeros wherever it is placed (a new file).
package enum DataExtentCopier {
    package typealias Placement = (_ virtual: UInt64, _ length: UInt64) throws(VHDXError) -> [(virtual: UInt64, file: UInt64, count: UInt64)]
    static let chunk = 256 << 10

    /// Returns the bytes of data copied.
    @discardableResult
    package static func copy(_ source: VHDXFile, to out: FileStorage, place: Placement, offload: inout CopyOffload,
                             progress: ((UInt64, UInt64) -> Void)?) throws(VHDXError) -> UInt64 {
        let total = source.virtualSize
        let layers = source.chain
        var buffer: [UInt8] = []
        var copied: UInt64 = 0
        try source.forEachResolvedExtent { (e) throws(VHDXError) in
            defer { progress?(e.end, total) }
            guard e.kind == .data, let file = e.fileOffset else { return }
            let layer = layers[e.layer]
            func throughBuffer(_ from: UInt64, _ to: UInt64, _ count: UInt64) throws(VHDXError) {
                if buffer.isEmpty { buffer = [UInt8](repeating: 0, count: chunk) }
                var done: UInt64 = 0
                while done < count {
                    let n = Int(min(UInt64(chunk), count - done))
                    try typed { try buffer.withUnsafeMutableBytes { b in
                        let piece = UnsafeMutableRawBufferPointer(rebasing: b[0..<n])
                        try layer.readStored(into: piece, at: from + done)
                        try RawConverter.writeNonZeroRuns(out, UnsafeRawBufferPointer(piece), at: to + done)
                    } }
                    done += UInt64(n)
                }
            }
            for piece in try place(e.virtualOffset, e.length) {
                let from = file + (piece.virtual - e.virtualOffset)
                if layer.diskType != .fixed, let stored = layer.io as? FileStorage {
                    try offload.copy(from: stored, at: from, to: out, at: piece.file, length: piece.count, fallback: throughBuffer)
                } else {
                    try throughBuffer(from, piece.file, piece.count)
                }
                copied += piece.count
            }
        }
        return copied
    }
}
