#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// Runs `work` on every core over items produced one batch at a time, and hands the results
/// to `consume` in the items' order: the caller's thread produces batch N+1 (reads the disk)
/// while the workers encode batch N, so reading, compressing and writing overlap, and the
/// output never depends on thread timing. At most two batches are in memory.
final class OrderedWork<Item: Sendable, Result: Sendable>: @unchecked Sendable {
    let batchSize: Int
    private let work: @Sendable (Item) -> Result
    private let cores = OrderedWork.cores

    init(batchSize: Int = OrderedWork.defaultBatch, work: @escaping @Sendable (Item) -> Result) {
        self.batchSize = max(1, batchSize)
        self.work = work
    }

    /// The cores online, or `VHDX_THREADS` when set (the benchmark compares 1 with all).
    static var cores: Int {
        if let text = getenv("VHDX_THREADS").map({ String(cString: $0) }), let n = Int(text), n > 0 { return n }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }
    /// Two items a core keeps every core busy while the caller's thread reads the next batch.
    static var defaultBatch: Int { 2 * cores }

    /// `produce` fills a batch (returning fewer than asked, or none, at the end); `consume`
    /// gets every result in order, on the caller's thread. Errors from either stop the run
    /// after the batch in flight finishes; that batch is consumed first, so an error in one of
    /// its items wins over the producer's later one.
    func run<E: Error>(produce: (Int) throws(E) -> [Item], consume: (Result) throws(E) -> Void) throws(E) {
        var batch = try produce(batchSize)
        while !batch.isEmpty {
            let group = DispatchGroup()
            let slots = Slots<Result>(count: batch.count)
            if cores == 1 {
                // One core: no worker threads at all (the benchmark's baseline).
                for (i, item) in batch.enumerated() { slots.set(i, work(item)) }
            } else {
                for (i, item) in batch.enumerated() {
                    DispatchQueue.global().async(group: group) { [work] in slots.set(i, work(item)) }
                }
            }
            let next: [Item]
            do { next = try produce(batchSize) } catch {
                group.wait()
                for r in slots.take() { try consume(r) }
                throw error
            }
            group.wait()
            for r in slots.take() { try consume(r) }
            batch = next
        }
    }
}

/// Results of one batch, each slot written by exactly one worker before `group.wait()`
/// (raw memory: an array property mutated from several threads would be a data race).
private final class Slots<R>: @unchecked Sendable {
    private let values: UnsafeMutablePointer<R?>
    private let count: Int
    init(count: Int) {
        self.count = count
        values = .allocate(capacity: count)
        values.initialize(repeating: nil, count: count)
    }
    deinit {
        values.deinitialize(count: count)
        values.deallocate()
    }
    func set(_ i: Int, _ v: R) { values[i] = v }
    func take() -> [R] { (0..<count).map { values[$0]! } }
}
