/// What `check` found, and the exit status it maps to (qemu-img check's convention).
public struct CheckReport: Sendable {
    /// The file checked.
    public var path: String
    /// Every problem found, in the order met (see ``Finding``).
    public var findings: [Finding] = []
    /// Findings left out after the per-kind cap, so a wrecked BAT cannot flood the report.
    public var suppressed: Int = 0
    /// The pending log found, applied in memory for the check (nil: the log was empty).
    public var logReplay: LogReplayInfo?
    /// What `Repairer` fixed before this check, if it ran.
    public var repaired: [String] = []
    /// False when the check could not look past some structure (the findings say which).
    public var complete = true
    /// Bytes of file space nothing references that hold data.
    public var leakedBytes: UInt64 = 0

    /// The findings that break a rule of the format.
    public var corruptions: Int { findings.filter { $0.kind == .corruption }.count }
    /// The findings that are only leaked space.
    public var leaks: Int { findings.filter { $0.kind == .leak }.count }

    /// 0 clean, 2 corruption found, 3 only leaked space. (1, the check could not run, is the
    /// caller's: it has no report.)
    public var exitCode: Int32 {
        if corruptions > 0 { return 2 }
        if leaks > 0 { return 3 }
        return 0
    }
}
