import VHDXFormat

/// One problem or observation about an image, with where it is and whether `--repair` can fix
/// it. Opening an image collects the same findings the checker reports; only those that make the
/// image unreadable stop an open. Code that acts on a finding decides by its `kind` and `code`,
/// never by its message.
public struct Finding: Sendable, CustomStringConvertible {
    /// How serious a finding is.
    public enum Kind: String, Sendable {
        /// The image breaks a rule of the format.
        case corruption
        /// Space in the file that nothing references.
        case leak
        /// Worth knowing, not wrong (a pending log replayed in memory, stale log entries).
        case notice
    }

    /// What was found, machine-readable (the message says it for a person).
    public enum Code: String, Sendable {
        // What decoding a structure found (`FormatError.Code`).
        /// Fewer bytes than the structure needs: a short file, a short item, a region too small.
        case truncated
        /// A signature that is not the structure's.
        case badSignature
        /// A stored checksum that does not match.
        case badChecksum
        /// A reserved field or reserved bits that are not zero.
        case reservedNonZero
        /// A value outside what the format allows.
        case outOfRange
        /// An offset or size not on the boundary the format requires.
        case misaligned
        /// Valid, but something this implementation refuses by rule: an open stops with
        /// `VHDXError.Code.unsupported`, not `.corrupt`.
        case unsupported
        /// Fields that contradict each other.
        case inconsistent

        // What the layout and allocation checks found.
        /// An object (log, region, block, sector bitmap) past the end of the file or inside the
        /// header section, or a BAT entry past the last block.
        case outOfBounds
        /// Two objects share file space.
        case overlap
        /// Something the image needs is not there (a required metadata item, a parent linkage,
        /// the sector bitmap of a chunk with PARTIALLY_PRESENT blocks).
        case missing
        /// A BAT state the disk type cannot hold, or a reserved state.
        case invalidState
        /// A BAT state of the 0.95 draft (read as its successor).
        case draftState
        /// File space that holds data but nothing references.
        case leak

        // Redundant copies and the log.
        /// Neither copy of a redundant structure is valid.
        case noValidCopy
        /// One copy of a redundant structure is damaged; the other is used.
        case damagedCopy
        /// Two valid copies differ.
        case copiesDiffer
        /// A pending log, applied in memory (or to be written before the first change).
        case pendingLog
        /// The log cannot be replayed (its entries break a rule).
        case badLog
        /// A check stopped at a structure it could not read past (the message says why).
        case unreadable

        // Differencing chains.
        /// A parent whose identity does not match the child's linkage, or a cyclic chain.
        case brokenChain
        /// The parents could not be reached, so they were not checked.
        case parentsNotChecked
        /// A child linked by parent_linkage2: a merge into its parent was started, not completed.
        case unfinishedMerge
        /// A parent whose DataWriteGuid was not checked (a mismatch was accepted).
        case parentNotVerified

        // Change tracking, VHD Sets, other files.
        /// Change tracking was reset (or will be at the next writable open).
        case trackingReset
        /// A stored change set of change tracking is damaged.
        case trackingDamaged
        /// Something change tracking noticed at open (an unclean stop folded into the changes).
        case trackingNotice
        /// A problem of a VHD Set's own files (its record, its snapshots' files).
        case setProblem
        /// The file is not a VHDX image at all (an export stream, say).
        case notAnImage

        /// The finding code of a format error's code.
        public init(_ code: FormatError.Code) {
            switch code {
            case .truncated: self = .truncated
            case .badSignature: self = .badSignature
            case .badChecksum: self = .badChecksum
            case .reservedNonZero: self = .reservedNonZero
            case .outOfRange: self = .outOfRange
            case .misaligned: self = .misaligned
            case .unsupported: self = .unsupported
            case .inconsistent: self = .inconsistent
            }
        }

        /// The finding code of an engine error: its format cause's code when it has one, else
        /// what the engine's code says, else `otherwise`.
        init(_ error: VHDXError, otherwise: Code) {
            if let f = error.cause as? FormatError { self.init(f.code); return }
            switch error.code {
            case .unsupported: self = .unsupported
            case .outOfBounds: self = .outOfBounds
            case .tooLarge: self = .outOfRange
            default: self = otherwise
            }
        }
    }

    /// How serious it is.
    public var kind: Kind
    /// What was found.
    public var code: Code
    /// The structure it is about (header, region table, BAT, log …).
    public var structure: String
    /// Where in the file, when known.
    public var fileOffset: UInt64?
    /// What is wrong, for a person.
    public var message: String
    /// `check --repair` can fix it (replay the log, restore a header or region-table copy).
    public var repairable: Bool
    /// An open can still serve correct reads despite it (e.g. a damaged redundant copy).
    public var openCanContinue: Bool

    /// A finding of `code` about `structure`.
    public init(_ kind: Kind, _ code: Code, _ structure: String, at fileOffset: UInt64? = nil, _ message: String,
                repairable: Bool = false, openCanContinue: Bool = true) {
        self.kind = kind
        self.code = code
        self.structure = structure
        self.fileOffset = fileOffset
        self.message = message
        self.repairable = repairable
        self.openCanContinue = openCanContinue
    }

    init(_ e: FormatError, repairable: Bool = false, openCanContinue: Bool = false) {
        self.init(.corruption, Code(e.code), e.structure, at: e.fileOffset,
                  (e.field.map { "\($0): " } ?? "") + "\(e.code): \(e.detail)",
                  repairable: repairable, openCanContinue: openCanContinue)
    }

    /// The finding as one line.
    public var description: String {
        var s = "\(kind): \(structure)"
        if let fileOffset { s += " at \(fileOffset) (0x\(String(fileOffset, radix: 16)))" }
        return s + ": " + message
    }
}
