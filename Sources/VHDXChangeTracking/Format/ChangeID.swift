import VHDXFormat

/// A change ID: names the disk's content when an epoch was sealed (TRACKING-FORMAT.md §4).
///
/// Text form: `vhdxct1:<virtual disk id>:<tracking id>:<generation>:<epoch>:<tag>`, the GUIDs as
/// 32 lowercase hex digits of their on-disk bytes, generation and epoch in decimal, the tag as 16
/// lowercase hex digits; at most 127 characters. The virtual disk id tells "another disk" from
/// "unknown"; the tracking id changes each time tracking is enabled; the generation each time
/// tracking is reset; the tag is drawn at random by each seal, so two copies of one disk that
/// seal the same epoch number after they diverged never share an ID. IDs sealed by builds before
/// tags existed have no sixth field (tag 0) and match only records sealed without one.
public struct ChangeID: Hashable, Sendable, CustomStringConvertible {
    public static let prefix = "vhdxct1"
    public static let maxLength = 256

    public var virtualDiskID: GUID
    public var trackingID: GUID
    public var generation: UInt32
    public var epoch: UInt64
    /// The seal's random tag; 0 for an ID sealed before tags existed.
    public var tag: UInt64

    public init(virtualDiskID: GUID, trackingID: GUID, generation: UInt32, epoch: UInt64, tag: UInt64 = 0) {
        self.virtualDiskID = virtualDiskID
        self.trackingID = trackingID
        self.generation = generation
        self.epoch = epoch
        self.tag = tag
    }

    public var description: String {
        let base = "\(ChangeID.prefix):\(hex(virtualDiskID.bytes)):\(hex(trackingID.bytes)):\(generation):\(epoch)"
        guard tag != 0 else { return base }
        let t = String(tag, radix: 16)
        return base + ":" + String(repeating: "0", count: 16 - t.count) + t
    }

    /// Parses the text form exactly as `description` writes it; nil for anything else (wrong
    /// prefix or field count, uppercase or non-hex digits, a zero or short tag, whitespace).
    public init?(text: String) {
        guard text.utf8.count <= ChangeID.maxLength else { return nil }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 5 || parts.count == 6, parts[0] == ChangeID.prefix,
              let disk = ChangeID.guid(parts[1]), let tracking = ChangeID.guid(parts[2]),
              let generation = ChangeID.decimal(parts[3]).flatMap({ UInt32(exactly: $0) }),
              let epoch = ChangeID.decimal(parts[4]) else { return nil }
        var tag: UInt64 = 0
        if parts.count == 6 {
            guard parts[5].utf8.count == 16, parts[5].utf8.allSatisfy({ ChangeID.nibble($0) != nil }),
                  let t = UInt64(parts[5], radix: 16), t != 0 else { return nil }
            tag = t
        }
        self.init(virtualDiskID: disk, trackingID: tracking, generation: generation, epoch: epoch, tag: tag)
    }

    private static func decimal(_ s: Substring) -> UInt64? {
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return UInt64(s)
    }

    private static func guid(_ s: Substring) -> GUID? {
        let u = Array(s.utf8)
        guard u.count == 32 else { return nil }
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: 32, by: 2) {
            guard let hi = nibble(u[i]), let lo = nibble(u[i + 1]) else { return nil }
            bytes.append(hi << 4 | lo)
        }
        return GUID(bytes: bytes)
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
