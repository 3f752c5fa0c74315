/// Times as people read them: seconds since 1970 as UTC ISO 8601 (`2026-12-07T13:05:09Z`),
/// computed here (days → civil date, Howard Hinnant's algorithm) so that no layer needs
/// Foundation or the C library's time zone state for it.
package enum UTCTime {
    package static func iso8601(seconds: UInt64) -> String {
        let days = Int64(seconds / 86_400), rest = Int64(seconds % 86_400)
        let z = days + 719_468
        let era = z / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(year)-\(two(month))-\(two(day))T\(two(rest / 3600)):\(two(rest / 60 % 60)):\(two(rest % 60))Z"
    }
}
