/// Fixed facts of the `.vhds` layout we define (SET-FORMAT.md): where the two copies live and
/// every bound a decoder enforces before it trusts a count or a length.
public enum SetFileLayout {
    /// "swvhdset": ours alone. Not VHDX's "vhdxfile", not anything Microsoft documents.
    public static let signature: [UInt8] = Array("swvhdset".utf8)
    /// What a VHDX file starts with, to say "this is a disk, not a set".
    static let vhdxSignature: [UInt8] = Array("vhdxfile".utf8)
    public static let majorVersion: UInt16 = 1
    public static let minorVersion: UInt16 = 0

    /// Copy A at 0, copy B at `slotSize`; each copy is at most `slotSize` bytes.
    public static let slotSize = 512 * 1024
    public static let slotOffsets: [UInt64] = [0, UInt64(slotSize)]
    public static let headerSize = 128
    static let checksumOffset = 8
    static let entrySize = 112
    static let aliasSize = 60

    public static let maxSnapshots = 256
    public static let maxAliases = 256
    public static let maxUnlinkQueue = 64
    public static let maxPathBytes = 1024
}
