#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// Runs `work` on every core over items the caller's thread produces, and hands the results
/// to `consume` in the items' order, on the caller's thread. Items go to the workers one by
/// one as they are produced, up to `window` in flight: the caller's thread keeps producing
/// (reading the disk) while the workers encode, and waits only for the oldest item when the
/// window is full. The output never depends on thread timing; at most `window` items and
/// their results are in memory.
final class OrderedWork<Item: Sendable, Result: Sendable>: @unchecked Sendable {
    let window: Int
    private let work: @Sendable (Item) -> Result
    private let cores = OrderedWork.cores

    init(window: Int = OrderedWork.defaultWindow, work: @escaping @Sendable (Item) -> Result) {
        self.window = max(1, window)
        self.work = work
    }

    /// The cores online, or `VHDX_THREADS` when set (the benchmark compares 1 with all).
    static var cores: Int {
        if let text = getenv("VHDX_THREADS").map({ String(cString: $0) }), let n = Int(text), n > 0 { return n }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }
    /// Four items a core: enough to keep every core busy while the caller's thread reads.
    static var defaultWindow: Int { 4 * cores }

    /// `produce` gives up to the asked number of items (none at the end); `consume` gets every
    /// result in order. An error from either stops the run once the items in flight finish; on
    /// a producer's error those items are consumed first, so an error in one of them (earlier
    /// in the output) wins over the producer's later one.
    func run<E: Error>(produce: (Int) throws(E) -> [Item], consume: (Result) throws(E) -> Void) throws(E) {
        var inFlight: [Slot<Result>] = []
        defer { for slot in inFlight { slot.wait() } }
        while true {
            let items: [Item]
            do { items = try produce(cores == 1 ? 1 : max(1, window - inFlight.count)) } catch {
                while !inFlight.isEmpty { try consume(inFlight.removeFirst().wait()) }
                throw error
            }
            if items.isEmpty { break }
            for item in items {
                let slot = Slot<Result>()
                if cores == 1 {
                    // One core: no worker threads at all (the benchmark's baseline).
                    slot.set(work(item))
                } else {
                    DispatchQueue.global().async { [work] in slot.set(work(item)) }
                }
                inFlight.append(slot)
            }
            while inFlight.count >= window || (cores == 1 && !inFlight.isEmpty) {
                try consume(inFlight.removeFirst().wait())
            }
        }
        while !inFlight.isEmpty { try consume(inFlight.removeFirst().wait()) }
    }
}

/// One item's result, set once by a worker, waited for by the caller's thread.
private final class Slot<R>: @unchecked Sendable {
    private var value: R?
    private let done = DispatchSemaphore(value: 0)
    func set(_ v: R) {
        value = v
        done.signal()
    }
    /// The result (and the slot stays signalled, so waiting again does not block).
    @discardableResult
    func wait() -> R {
        done.wait()
        done.signal()
        return value!
    }
}
