import VHDXFormat

/// How a child's parent was found: where, and which locator linkage its DataWriteGuid matched.
public struct ParentLink: Sendable {
    /// Which of the child's linkages the parent's DataWriteGuid matched.
    public enum Match: String, Sendable {
        /// parent_linkage: the parent is what the child was made against.
        case parentLinkage = "parent_linkage"
        /// The alternate linkage, set while a merge into the parent is under way.
        case parentLinkage2 = "parent_linkage2"
        /// No linkage matched; accepting a mismatch was asked for (`ParentOptions.ignoreIDMismatch`).
        case ignored
    }

    /// The parent's path as it was found.
    public let path: String
    /// How the parent was accepted.
    public let match: Match
    /// Every path tried before this one was accepted, with why it was not.
    public let rejected: [String]
}
