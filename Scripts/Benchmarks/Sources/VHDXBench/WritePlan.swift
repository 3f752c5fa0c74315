import VHDX
import VHDXChangeTracking

let defaultWriteSize: UInt64 = 4096

/// SplitMix64: tiny, fast, deterministic across platforms.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The write sequence: offset (aligned to the write size, anywhere in the disk) and fill byte
/// (1...255, never zero: an all-zero write into an unallocated block changes nothing and
/// allocates nothing). With `distinct`, a slot already drawn is drawn again (a different
/// sequence, same generator).
struct WritePlan: Sequence, IteratorProtocol {
    var rng: SplitMix64
    let slots: UInt64
    let size: UInt64
    var remaining: Int
    let distinct: Bool
    var seen = Set<UInt64>()
    init(size: UInt64, count: Int, seed: UInt64, writeSize: UInt64 = defaultWriteSize, distinct: Bool = false) {
        rng = SplitMix64(state: seed)
        self.size = writeSize
        slots = size / writeSize
        remaining = distinct ? Swift.min(count, Int(slots)) : count
        self.distinct = distinct
    }
    mutating func next() -> (offset: UInt64, byte: UInt8)? {
        guard remaining > 0 else { return nil }
        remaining -= 1
        while true {
            let slot = rng.next().multipliedFullWidth(by: slots).high  // unbiased enough, uses high bits
            let byte = UInt8(1 + rng.next() % 255)
            if distinct && !seen.insert(slot).inserted { continue }
            return (slot * size, byte)
        }
    }
}

/// Opens `path` and attaches change tracking when it has a tracking region.
func openTracked(_ path: String, writable: Bool) throws -> (VHDXFile, ChangeTracker?) {
    let image = try VHDXFile.open(path: path, writable: writable)
    let tracker = try ChangeTracker.attach(to: image)
    return (image, tracker)
}
