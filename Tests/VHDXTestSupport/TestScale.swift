#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How many cases the property-based and crash-model tests run, and with which seeds: one
/// helper, so every such test scales and replays the same way.
///
/// * Default: each test's own count (what CI runs).
/// * `VHDX_LONG_TESTS=1` (`VHDX_LONG_TESTS=1 bash Scripts/test.sh`, not in CI): 20× the cases.
/// * `VHDX_TEST_SEED=<n>`: only the case of seed `n`, the one a failure printed.
package enum TestScale {
    /// 20 in long mode, else 1.
    package static let factor: Int = {
        guard let v = getenv("VHDX_LONG_TESTS").map({ String(cString: $0) }) else { return 1 }
        return v == "1" || v.lowercased() == "true" || v.lowercased() == "yes" ? 20 : 1
    }()

    /// The seed to replay, from VHDX_TEST_SEED.
    package static let replaySeed: UInt64? = getenv("VHDX_TEST_SEED").flatMap { UInt64(String(cString: $0)) }

    /// `count` cases by default, 20× in long mode.
    package static func count(_ count: Int) -> Int { count * factor }

    /// The seeds a test runs: `count(n)` seeds from `base` (distinct per test), or only the one
    /// to replay.
    package static func seeds(_ n: Int, base: UInt64 = 0) -> [UInt64] {
        if let replaySeed { return [replaySeed] }
        return (0..<UInt64(count(n))).map { base &+ $0 }
    }

    /// The line a failure prints: the seed and the one command that replays it.
    package static func replay(seed: UInt64, filter: String) -> String {
        "seed \(seed); replay: VHDX_TEST_SEED=\(seed) swift test --filter '\(filter)'"
    }
}
