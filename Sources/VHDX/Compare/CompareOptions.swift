/// How ``DiskImage/compare(with:options:progress:)`` compares, as `qemu-img compare` does.
public struct CompareOptions: Sendable, Equatable {
    /// False (the default): unallocated space equals zeros and, when the sizes differ, the
    /// longer disk's tail must be all zeros. True: the sizes must be equal, and allocation must
    /// match as well as content (an allocated range of zeros differs from an unallocated one).
    public var strict: Bool

    public init(strict: Bool = false) {
        self.strict = strict
    }
}
