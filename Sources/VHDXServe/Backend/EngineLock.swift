#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one lock every call into a served disk's engine takes (`VHDXFile` is not thread-safe).
/// A plain mutex: the guarded state is the disk's own (non-Sendable engine objects), so a
/// `Mutex<Value>` owning it would have to hand the engine across `sending` boundaries.
final class EngineLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    fileprivate func tryLock() -> Bool { pthread_mutex_trylock(mutex) == 0 }
    fileprivate func unlock() { pthread_mutex_unlock(mutex) }

    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

extension EngineLock {
    /// `body` under the lock if it is free now; nil (and `body` not run) if it is held.
    func withLockIfFree<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T? {
        guard tryLock() else { return nil }
        defer { unlock() }
        return try body()
    }
}
