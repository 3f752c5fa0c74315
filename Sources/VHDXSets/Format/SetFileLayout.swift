/// Fixed facts of the `.vhds` layout we define (SET-FORMAT.md): where the two copies live and
/// every bound a decoder enforces before it trusts a count or a length.
public enum SetFileLayout {
    /// "swvhdset": ours alone. Not VHDX's "vhdxfile", not anything Microsoft documents.
    public static let signature: [UInt8] = Array("swvhdset".utf8)
    /// What a VHDX file starts with, to say "this is a disk, not a set".
    static let vhdxSignature: [UInt8] = Array("vhdxfile".utf8)
    /// 2: change IDs carry their seal's tag. Version 1 (IDs without tags) is still read.
    public static let majorVersion: UInt16 = 2
    public static let minorVersion: UInt16 = 0
    static let readableMajorVersions: ClosedRange<UInt16> = 1...2

    /// Copy A at 0, copy B at `slotSize`; each copy is at most `slotSize` bytes.
    public static let slotSize = 512 * 1024
    public static let slotOffsets: [UInt64] = [0, UInt64(slotSize)]
    public static let headerSize = 128
    static let checksumOffset = 8
    static let entrySize = 120
    static let aliasSize = 68

    public static let maxSnapshots = 256
    public static let maxAliases = 256
    public static let maxUnlinkQueue = 64
    public static let maxPathBytes = 1024
}
