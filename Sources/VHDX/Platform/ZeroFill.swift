#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension UnsafeMutableRawBufferPointer {
    /// Sets every byte to zero with `memset`. `initializeMemory(as:repeating:)` is inlined into
    /// this module, so a debug build (the test suite's) runs it as a per-byte generic loop: it was
    /// a fifth of the set crash tests' time, reading unallocated blocks.
    package func zeroFill() {
        guard let base = baseAddress, count > 0 else { return }
        memset(base, 0, count)
    }
}
