import VHDXFormat

/// One problem or observation about an image, with where it is and whether `--repair` can fix
/// it. Opening an image collects the same findings the checker reports; only those that make the
/// image unreadable stop an open.
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

    /// How serious it is.
    public var kind: Kind
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

    /// A finding about `structure`.
    public init(_ kind: Kind, _ structure: String, at fileOffset: UInt64? = nil, _ message: String,
                repairable: Bool = false, openCanContinue: Bool = true) {
        self.kind = kind
        self.structure = structure
        self.fileOffset = fileOffset
        self.message = message
        self.repairable = repairable
        self.openCanContinue = openCanContinue
    }

    init(_ e: FormatError, repairable: Bool = false, openCanContinue: Bool = false) {
        self.init(.corruption, e.structure, at: e.fileOffset,
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
