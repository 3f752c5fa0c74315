/// How the parents of a differencing image are found and accepted.
public struct ParentOptions: Sendable {
    /// Use this file as the top image's parent instead of the locator's paths.
    public var parentPath: String?
    /// Directories searched (after the locator's own paths) for a parent by its file name.
    public var searchDirectories: [String] = []
    /// Accept a parent whose DataWriteGuid is not the child's parent_linkage (the user vouches
    /// that the parent's content is what the child was made against).
    public var ignoreIDMismatch = false
    /// Chains deeper than this are refused as absurd (Hyper-V itself stops far sooner).
    public var maxDepth = 64

    /// Options for finding parents; the defaults follow the locator only.
    public init(parentPath: String? = nil, searchDirectories: [String] = [], ignoreIDMismatch: Bool = false) {
        self.parentPath = parentPath
        self.searchDirectories = searchDirectories
        self.ignoreIDMismatch = ignoreIDMismatch
    }

    /// Follow the locator, no overrides.
    public static let `default` = ParentOptions()
}
