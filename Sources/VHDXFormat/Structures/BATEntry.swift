/// BAT entry, [MS-VHDX] 2.5.1; 64 bits, little-endian.
///
/// | Bits  | Field        | Rule                                             |
/// |-------|--------------|--------------------------------------------------|
/// | 0-2   | State        | payload or sector-bitmap state                   |
/// | 3-19  | Reserved     | 0                                                |
/// | 20-63 | FileOffsetMB | block's file offset in MiB; 0 for dataless states |
///
/// The one place an entry is packed and unpacked: the engine builds entries with the typed
/// constructors and the constants below and moves them to and from bytes with `encode`/`load`.
public struct BATEntry: Equatable, Sendable {
    public static let encodedSize = 8
    public var raw: UInt64

    @inlinable public init(raw: UInt64) { self.raw = raw }

    /// The raw fields (bits outside them are dropped); what tests and damaged images need.
    public init(state: UInt8, fileOffsetMB: UInt64) {
        raw = UInt64(state & 7) | (fileOffsetMB << 20)
    }

    /// A payload block in `state` at `offset`.
    public init(state: PayloadBlockState, offset: MiBOffset) {
        raw = UInt64(state.rawValue) | offset.bytes
    }

    /// A sector bitmap block in `state` at `offset`.
    public init(sectorBitmap state: SectorBitmapState, offset: MiBOffset) {
        raw = UInt64(state.rawValue) | offset.bytes
    }

    /// NOT_PRESENT with no offset: a payload block the parent supplies (or that reads as zeros
    /// without one), a chunk without a sector bitmap, a slot past the last block.
    public static let notPresent = BATEntry(raw: 0)
    /// PAYLOAD_BLOCK_UNDEFINED, no offset.
    public static let undefined = BATEntry(raw: UInt64(PayloadBlockState.undefined.rawValue))
    /// PAYLOAD_BLOCK_ZERO, no offset.
    public static let zero = BATEntry(raw: UInt64(PayloadBlockState.zero.rawValue))
    /// PAYLOAD_BLOCK_UNMAPPED, no offset.
    public static let unmapped = BATEntry(raw: UInt64(PayloadBlockState.unmapped.rawValue))

    @inlinable public var state: UInt8 { UInt8(truncatingIfNeeded: raw & 7) }
    public var reservedBits: UInt64 { (raw >> 3) & 0x1FFFF }
    public var fileOffsetMB: UInt64 { raw >> 20 }
    /// The block's file offset in bytes.
    @inlinable public var fileOffset: UInt64 { raw & 0xFFFF_FFFF_FFF0_0000 }
    /// The block's file offset, as the 1 MiB-aligned value it always is.
    public var offset: MiBOffset { MiBOffset(megabytes: raw >> 20) }
    /// A payload state of 0-3 (NOT_PRESENT, UNDEFINED, ZERO, UNMAPPED) with no offset and no
    /// reserved bits: the entry a sparse disk holds by the million, tested with one compare.
    @inlinable public var isPlainDataless: Bool { raw & ~UInt64(3) == 0 }

    /// The entry at `index` (in entries) of little-endian table bytes, which must hold it
    /// (the hot loops over whole BAT pages; the array form below checks).
    @inlinable public static func load(from table: UnsafeRawBufferPointer, index: Int) -> BATEntry {
        BATEntry(raw: UInt64(littleEndian: unsafe table.loadUnaligned(fromByteOffset: index * encodedSize, as: UInt64.self)))
    }

    /// The entry at `index` (in entries) of little-endian table bytes; nil past their end.
    public static func load(from table: [UInt8], index: Int) -> BATEntry? {
        guard index >= 0, (index + 1) * encodedSize <= table.count else { return nil }
        return unsafe table.withUnsafeBytes { unsafe load(from: $0, index: index) }
    }

    /// Writes the entry's 8 little-endian bytes over entry `index` of `table`; false (nothing
    /// written) when the table does not hold that entry.
    @discardableResult
    public func encode(into table: inout [UInt8], index: Int) -> Bool {
        guard index >= 0, (index + 1) * BATEntry.encodedSize <= table.count else { return false }
        let at = index * BATEntry.encodedSize
        for k in 0..<BATEntry.encodedSize { table[at + k] = UInt8(truncatingIfNeeded: raw >> (8 * UInt64(k))) }
        return true
    }

    /// Appends the entry's 8 little-endian bytes.
    public func encode(into w: inout ByteWriter) { w.write(raw) }
}

/// A file offset on a 1 MiB boundary: what a BAT entry can point at (its FileOffsetMB field).
/// Built from bytes only when aligned, so an entry never silently drops low bits.
public struct MiBOffset: Hashable, Comparable, Sendable {
    /// The offset in MiB (the entry's FileOffsetMB); below 2^44, so `bytes` cannot overflow.
    public let megabytes: UInt64

    /// Nil unless `bytes` is a multiple of 1 MiB.
    public init?(bytes: UInt64) {
        guard bytes % Layout.MiB == 0 else { return nil }
        megabytes = bytes / Layout.MiB
    }

    init(megabytes: UInt64) { self.megabytes = megabytes & (1 << 44 - 1) }

    /// The offset in bytes.
    public var bytes: UInt64 { megabytes << 20 }

    /// The offset `n` MiB further (wrapping past the largest offset an entry holds).
    public func advanced(byMegabytes n: UInt64) -> MiBOffset { MiBOffset(megabytes: megabytes &+ n) }

    public static func < (a: MiBOffset, b: MiBOffset) -> Bool { a.megabytes < b.megabytes }
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
