/// How often and how patiently a request is retried after a 5xx, throttling (429, `SlowDown`),
/// a timeout or a broken connection. Client errors (4xx) are never retried.
package struct RetryPolicy: Sendable {
    /// Attempts in all (the first one included).
    package var maxAttempts: Int
    /// The wait before the second attempt; it doubles after each further failure…
    package var baseDelay: Double
    /// …up to this many seconds.
    package var maxDelay: Double

    package init(maxAttempts: Int = 6, baseDelay: Double = 0.25, maxDelay: Double = 10) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// Six attempts over about 10-20 seconds in all.
    package static let `default` = RetryPolicy()

    /// Seconds to wait after failed attempt `attempt` (1-based): exponential with "equal
    /// jitter" (half fixed, half random), so clients that failed together spread out.
    package func delay(afterAttempt attempt: Int) -> Double {
        let cap = min(maxDelay, baseDelay * Double(1 << min(attempt - 1, 30)))
        return cap / 2 + Double.random(in: 0...(cap / 2))
    }
}
