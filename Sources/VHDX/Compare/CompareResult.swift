/// The outcome of comparing two disks (``DiskImage/compare(with:options:progress:)``).
public struct CompareResult: Equatable, Sendable {
    /// Why the disks differ.
    public enum Reason: String, Sendable {
        /// The bytes differ (or, by default, a longer disk's tail is not all zeros).
        case content
        /// Strict mode: one side is allocated where the other is not.
        case allocation
        /// Strict mode: the disks have different sizes (and agree up to the shorter one's end).
        case size
    }

    /// Whether no difference was found.
    public var identical: Bool { firstDifference == nil }
    /// The first byte offset at which the disks differ, nil when identical.
    public package(set) var firstDifference: UInt64?
    /// Why they differ there, nil when identical.
    public package(set) var reason: Reason?
    /// The first disk's size in bytes.
    public package(set) var sizeA: UInt64
    /// The second disk's size in bytes.
    public package(set) var sizeB: UInt64
    /// Bytes of virtual disk that were checked and found equal: `[0, comparedBytes)`. The whole
    /// compared range when identical, `firstDifference` otherwise.
    public package(set) var comparedBytes: UInt64
    /// Bytes actually read from the two inputs together (unallocated ranges are not read).
    public package(set) var bytesRead: UInt64
}
