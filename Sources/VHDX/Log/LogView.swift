import VHDXFormat

/// Circular reads of the log ring buffer, through a 1 MiB window cache so the 4 KiB-step scan of
/// the active-sequence search costs one real read per MiB.
struct LogView {
    let storage: Storage
    let logOffset: UInt64
    let logLength: UInt64
    private var windowStart: UInt64 = .max
    private var window: [UInt8] = []
    static let windowSize: UInt64 = 1 << 20

    init(storage: Storage, logOffset: UInt64, logLength: UInt64) {
        self.storage = storage
        self.logOffset = logOffset
        self.logLength = logLength
    }

    /// `count` bytes starting at log position `position`, wrapping at the end of the ring.
    mutating func read(at position: UInt64, count: Int) throws(VHDXError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var pos = position % logLength
        var left = UInt64(count)
        while left > 0 {
            let ws = pos / LogView.windowSize * LogView.windowSize
            if ws != windowStart {
                let n = min(LogView.windowSize, logLength - ws)
                window = try storage.read(count: Int(n), at: logOffset + ws)
                windowStart = ws
            }
            let inWindow = pos - ws
            let take = min(left, UInt64(window.count) - inWindow)
            out.append(contentsOf: window[Int(inWindow)..<Int(inWindow + take)])
            left -= take
            pos = (pos + take) % logLength
        }
        return out
    }
}
