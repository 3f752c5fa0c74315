import VHDXFormat

/// A change ID: names the disk's content when an epoch was sealed (TRACKING-FORMAT.md §4).
///
/// Text form: `vhdxct1:<virtual disk id>:<tracking id>:<generation>:<epoch>`, the GUIDs as 32
/// lowercase hex digits of their on-disk bytes, the numbers in decimal; at most 110 characters.
/// The virtual disk id tells "another disk" from "unknown"; the tracking id changes each time
/// tracking is enabled; the generation each time tracking is reset.
public struct ChangeID: Hashable, Sendable, CustomStringConvertible {
    public static let prefix = "vhdxct1"
    public static let maxLength = 256

    public var virtualDiskID: GUID
    public var trackingID: GUID
    public var generation: UInt32
    public var epoch: UInt64

    public init(virtualDiskID: GUID, trackingID: GUID, generation: UInt32, epoch: UInt64) {
        self.virtualDiskID = virtualDiskID
        self.trackingID = trackingID
        self.generation = generation
        self.epoch = epoch
    }

    public var description: String {
        "\(ChangeID.prefix):\(hex(virtualDiskID.bytes)):\(hex(trackingID.bytes)):\(generation):\(epoch)"
    }

    /// Parses the text form; nil for anything else (wrong prefix, field count, digits).
    public init?(text: String) {
        guard text.utf8.count <= ChangeID.maxLength else { return nil }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == ChangeID.prefix,
              let disk = ChangeID.guid(parts[1]), let tracking = ChangeID.guid(parts[2]),
              parts[3].allSatisfy({ $0.isASCII && $0.isNumber }), let generation = UInt32(parts[3]),
              parts[4].allSatisfy({ $0.isASCII && $0.isNumber }), let epoch = UInt64(parts[4]) else { return nil }
        self.init(virtualDiskID: disk, trackingID: tracking, generation: generation, epoch: epoch)
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
