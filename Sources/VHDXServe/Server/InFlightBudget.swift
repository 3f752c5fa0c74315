import Synchronization

/// Payload bytes in flight across every connection of a server: what bounds its memory when
/// many clients pull at once (16 nbdcopy runs open 64 connections; each connection's own cap
/// alone let the server hold hundreds of MiB of read replies).
///
/// A request takes its bytes before it goes to the disk and gives them back when the disk is
/// done (its reply then waits under the connection's write watermark). When the budget is spent, the connection keeps its parsed request and waits; every
/// give wakes the waiters, which try again. A request is always admitted when nothing is in
/// flight anywhere, so a single request larger than the budget cannot stall.
final class InFlightBudget: Sendable {
    private struct State {
        var used = 0
        var waiters: [@Sendable () -> Void] = []
    }
    let limit: Int
    private let state = Mutex(State())

    init(limit: Int) { self.limit = limit }

    /// Takes `bytes` if they fit (or nothing is in flight); otherwise registers `wake` to be
    /// called once some bytes are given back, and returns false.
    func take(_ bytes: Int, orWait wake: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { s in
            if s.used == 0 || s.used + bytes <= limit {
                s.used += bytes
                return true
            }
            s.waiters.append(wake)
            return false
        }
    }

    func give(_ bytes: Int) {
        let waiters = state.withLock { s -> [@Sendable () -> Void] in
            s.used -= bytes
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w() }
    }
}
