import Dispatch
import Synchronization
import VHDX

/// Runs an output's writes on a thread of its own, in order, so the caller's thread goes back
/// to reading and checking while they happen; at most `limit` bytes wait in between. A failure
/// is thrown by the next `enqueue` or by `drain`, and nothing queued after it runs.
final class BackgroundWriter: Sendable {
    private static let unit = 1 << 20
    private let queue = DispatchQueue(label: "swift-vhdx.export.writer")
    private let room: DispatchSemaphore
    private let failure = Mutex<VHDXError?>(nil)

    init(limit: Int = 32 << 20) {
        room = DispatchSemaphore(value: max(1, limit / BackgroundWriter.unit))
    }

    /// Queues `op`, which writes `bytes` bytes (what counts against the limit).
    func enqueue(bytes: Int, _ op: @escaping () throws(VHDXError) -> Void) throws(VHDXError) {
        if let f = failure.withLock({ $0 }) { throw f }
        let tokens = max(1, (bytes + BackgroundWriter.unit - 1) / BackgroundWriter.unit)
        for _ in 0..<tokens { room.wait() }
        // The op's captures (the output) are used by this queue alone from here on.
        let box = UncheckedBox(op)
        queue.async { [self] in
            defer { for _ in 0..<tokens { room.signal() } }
            guard failure.withLock({ $0 }) == nil else { return }
            do throws(VHDXError) { try box.value() } catch { failure.withLock { $0 = error } }
        }
    }

    /// Waits for every queued write; throws the first failure.
    func drain() throws(VHDXError) {
        queue.sync {}
        if let f = failure.withLock({ $0 }) { throw f }
    }
}

/// Carries a non-Sendable value to the one thread that uses it.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
