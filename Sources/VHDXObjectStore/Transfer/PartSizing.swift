/// The size of each part of a multipart upload. S3 allows at most 10,000 parts, each at least
/// 5 MiB but the last, at most 5 GiB. Sizes are a pure function of the settings and the part
/// number, so a re-run cuts the same stream into the same parts (what resuming relies on).
package struct PartSizing: Sendable, Equatable {
    package static let maxParts = 10_000
    package static let maxPartSize = 5 << 30
    package static let defaultPartSize = 8 << 20

    /// The size of the first parts.
    package let base: Int

    /// - Parameters:
    ///   - partSize: the wanted size (8 MiB by default).
    ///   - expectedSize: the stream's size if known: parts then grow so 9,000 of them hold it.
    package init(partSize: Int = PartSizing.defaultPartSize, expectedSize: UInt64? = nil) {
        var base = max(1, partSize)
        if let expectedSize {
            let mib: UInt64 = 1 << 20
            let needed = (expectedSize + 8999) / 9000
            let rounded = (needed + mib - 1) / mib * mib
            base = max(base, Int(min(rounded, UInt64(Self.maxPartSize))))
        }
        self.base = base
    }

    /// Part `number` (1-based): the base size for parts 1-1000, doubling every 1,000 parts
    /// after that, so a stream of unknown size fits in 10,000 parts up to 1023 × 1000 × base
    /// (8 TiB with 8 MiB parts) while small streams keep small parts (and bounded memory).
    package func size(ofPart number: Int) -> Int {
        let doublings = min((number - 1) / 1000, 20)
        return min(Self.maxPartSize, base << doublings)
    }
}
