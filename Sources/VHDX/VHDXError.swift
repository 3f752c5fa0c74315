import VHDXFormat

/// An error from the engine: what failed, where (path and file offset) and why, with the
/// underlying cause (a `FormatError` or an errno) kept for `detailedDescription`.
///
/// Equality: two engine errors are equal when their `code`s are equal; message, path, offset,
/// cause and remedy are ignored. `ChangeTrackingError` and `ExportError` follow the same rule
/// with their `reason`s, so `#expect(throws: VHDXError(.readOnly, ""))` means "a read-only
/// refusal", whatever the words.
public struct VHDXError: Error, CustomStringConvertible, Equatable {
    /// What kind of failure it is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let raw: String
        /// An operating-system call failed (see `cause`).
        public static let io = Code(raw: "I/O error")
        /// The file breaks a rule of the format.
        public static let corrupt = Code(raw: "corrupt image")
        /// Valid, but uses something this implementation refuses by rule.
        public static let unsupported = Code(raw: "unsupported")
        /// A change was asked of a handle opened read-only.
        public static let readOnly = Code(raw: "read-only")
        /// Another process (or handle) holds the file.
        public static let inUse = Code(raw: "in use")
        /// A differencing image's parent could not be found.
        public static let parentNotFound = Code(raw: "parent not found")
        /// A parent was found, but it is not what the child was made against.
        public static let parentMismatch = Code(raw: "parent mismatch")
        /// A chain of parents leads back to itself.
        public static let cyclicChain = Code(raw: "cyclic parent chain")
        /// A request reaches past the end of the virtual disk.
        public static let outOfBounds = Code(raw: "out of bounds")
        /// A request that cannot be carried out as asked.
        public static let invalidArgument = Code(raw: "invalid argument")
        /// Something is larger than this implementation accepts.
        public static let tooLarge = Code(raw: "too large")
        /// The code as words.
        public var description: String { raw }
    }

    /// What kind of failure.
    public var code: Code
    /// What failed and why, for a person.
    public var message: String
    /// The file it is about, when one is.
    public var path: String?
    /// Where in that file, when known.
    public var fileOffset: UInt64?
    /// The underlying error (a `FormatError`, an operating-system error).
    public var cause: (any Error)?
    /// What the caller can do about it, when there is something. The message says it in the
    /// library's terms; a front end (the `vhdx` tool) may name its own option for it.
    public var remedy: Remedy?

    /// A way out of an error, named without any front end's options.
    public enum Remedy: Sendable, Equatable {
        /// Replace the existing file explicitly (`overwrite: true`).
        case overwrite
        /// Say where the parent is (`ParentOptions.parentPath` or a search directory).
        case locateParent
        /// Accept a parent whose DataWriteGuid does not match (`ParentOptions.ignoreIDMismatch`).
        case acceptParentMismatch
        /// Replay the pending log into the file (`Repairer.repair`).
        case repair
        /// List everything wrong with the image (`Checker.check`).
        case checkImage
        /// Point a VHD Set at a moved backing file (`VHDSet.relink`); nil snapshot: the leaf.
        case relink(set: String, snapshot: String?)
        /// Take a modified backing file as it is (`VHDSet.relink(…, acceptModified: true)`).
        case acceptModified(set: String, snapshot: String)
        /// Delete the current leaf instead of keeping it (`apply(_:discard: true)`).
        case discardLeaf
        /// Flatten (convert) or merge a differencing disk first.
        case flattenFirst
    }

    /// An error of `code` saying `message`.
    public init(_ code: Code, _ message: String, path: String? = nil, at fileOffset: UInt64? = nil, cause: (any Error)? = nil,
                remedy: Remedy? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.fileOffset = fileOffset
        self.cause = cause
        self.remedy = remedy
    }

    /// Wraps a format-layer error as corruption (or unsupported, when the file uses something
    /// this implementation refuses by rule).
    public static func format(_ e: FormatError, path: String?) -> VHDXError {
        VHDXError(e.code == .unsupported ? .unsupported : .corrupt, e.description, path: path, at: e.fileOffset, cause: e)
    }

    /// Equal when the codes are (see the type's documentation).
    public static func == (a: VHDXError, b: VHDXError) -> Bool { a.code == b.code }

    /// The error as one line: path, code, message and file offset.
    public var description: String {
        var s = ""
        if let path { s += "\(path): " }
        s += "\(code): \(message)"
        if let fileOffset, cause == nil { s += " (file offset \(fileOffset))" }
        return s
    }

    /// The description with the underlying cause.
    public var detailedDescription: String {
        var s = description
        if let cause, !(cause is FormatError) { s += "\n  caused by: \(cause)" }
        return s
    }
}

/// An error of a module above the engine that can carry an engine error unchanged
/// (`ChangeTrackingError`, `ExportError`: their typed APIs throw their own type). Code that acts
/// on the engine's error — an I/O error's errno, a remedy — finds it with `VHDXError.carried(by:)`
/// whichever API carried it.
public protocol CarriesEngineError: Error {
    /// The engine's error as it was thrown, when this error carries one.
    var engineError: VHDXError? { get }
}

extension VHDXError {
    /// `error` itself when it is an engine error, else the engine error it carries, if any.
    public static func carried(by error: any Error) -> VHDXError? {
        (error as? VHDXError) ?? (error as? any CarriesEngineError)?.engineError
    }
}

/// Runs a closure through APIs that only `rethrow` (the buffer accessors of Array), restoring
/// the engine's typed error on the way out.
@inline(__always)
package func typed<T>(_ body: () throws -> T) throws(VHDXError) -> T {
    do { return try body() } catch let e as VHDXError { throw e } catch {
        throw VHDXError(.io, "\(error)", cause: error)
    }
}
