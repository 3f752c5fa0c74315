import VHDX

/// Reads an export plan's ranges from the source in chunks, in order, on the caller's thread.
final class SourceReader {
    struct Item: Sendable {
        var offset: UInt64
        var length: UInt64
        /// nil: a range known to read as zeros (not read).
        var data: [UInt8]?
    }

    let image: VHDXFile
    let plan: ExportPlan
    let chunk: UInt64
    let progress: Exporter.Progress?
    private var segment = 0
    private var within: UInt64 = 0
    private(set) var scanned: UInt64 = 0
    private let total: UInt64

    init(image: VHDXFile, plan: ExportPlan, digestBlock: UInt64, progress: Exporter.Progress?) {
        self.image = image
        self.plan = plan
        // 1 MiB pieces (whole digest blocks; a data record holds at most 16 of them).
        chunk = max(digestBlock, min(1 << 20, 16 * digestBlock))
        self.progress = progress
        total = plan.readBytes
    }

    /// Up to `n` items; empty at the end.
    func next(_ n: Int) throws(VHDXError) -> [Item] {
        var out: [Item] = []
        while out.count < n, segment < plan.segments.count {
            let s = plan.segments[segment]
            guard s.read else {
                out.append(Item(offset: s.offset, length: s.length, data: nil))
                segment += 1
                continue
            }
            let length = min(chunk, s.length - within)
            let offset = s.offset + within
            // Not zero-filled first: every byte is read into.
            var failure: VHDXError?
            let data = [UInt8](unsafeUninitializedCapacity: Int(length)) { b, count in
                do throws(VHDXError) { try image.read(into: UnsafeMutableRawBufferPointer(b), at: offset) } catch { failure = error; b.initialize(repeating: 0) }
                count = Int(length)
            }
            if let failure { throw failure }
            out.append(Item(offset: offset, length: length, data: data))
            scanned += length
            within += length
            if within == s.length {
                segment += 1
                within = 0
            }
        }
        progress?(scanned, total)
        return out
    }

    /// Every item in order.
    func forEach(_ body: (UInt64, [UInt8]?) throws(VHDXError) -> Void) throws(VHDXError) {
        while true {
            let items = try next(8)
            if items.isEmpty { return }
            for i in items { try body(i.offset, i.data) }
        }
    }
}
