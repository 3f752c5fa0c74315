import VHDXFormat

/// How a child's parent was found: where, and which locator linkage its DataWriteGuid matched.
public struct ParentLink: Sendable {
    public enum Match: String, Sendable {
        case parentLinkage = "parent_linkage"
        /// The alternate linkage, set while a merge into the parent is under way.
        case parentLinkage2 = "parent_linkage2"
        /// No linkage matched; the user passed --ignore-id-mismatch.
        case ignored
    }

    public let path: String
    public let match: Match
    /// Every path tried before this one was accepted, with why it was not.
    public let rejected: [String]
}
