/// BAT entry, [MS-VHDX] 2.5.1; 64 bits, little-endian.
///
/// | Bits  | Field        | Rule                                             |
/// |-------|--------------|--------------------------------------------------|
/// | 0-2   | State        | payload or sector-bitmap state                   |
/// | 3-19  | Reserved     | 0                                                |
/// | 20-63 | FileOffsetMB | block's file offset in MiB; 0 for dataless states |
public struct BATEntry: Equatable, Sendable {
    public static let encodedSize = 8
    public var raw: UInt64

    public init(raw: UInt64) { self.raw = raw }

    public init(state: UInt8, fileOffsetMB: UInt64) {
        raw = UInt64(state & 7) | (fileOffsetMB << 20)
    }

    public var state: UInt8 { UInt8(raw & 7) }
    public var reservedBits: UInt64 { (raw >> 3) & 0x1FFFF }
    public var fileOffsetMB: UInt64 { raw >> 20 }
    public var fileOffset: UInt64 { raw & 0xFFFF_FFFF_FFF0_0000 }
}

/// Payload block states, [MS-VHDX] 2.5.1.1. Unknown raw values are kept by `BATEntry` and
/// reported by the checker, never trapped on.
public enum PayloadBlockState: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case notPresent = 0
    case undefined = 1
    case zero = 2
    case unmapped = 3
    /// UNMAPPED as numbered by the 0.95 draft; qemu still reads it as zeros.
    case unmappedV095 = 5
    case fullyPresent = 6
    case partiallyPresent = 7

    public var description: String {
        switch self {
        case .notPresent: "not-present"
        case .undefined: "undefined"
        case .zero: "zero"
        case .unmapped, .unmappedV095: "unmapped"
        case .fullyPresent: "data"
        case .partiallyPresent: "partial"
        }
    }
}

/// Sector bitmap block states, [MS-VHDX] 2.5.1.2.
public enum SectorBitmapState: UInt8, Sendable {
    case notPresent = 0
    case present = 6
}
