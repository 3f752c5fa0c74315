import ArgumentParser
import VHDX
import VHDXChangeTracking

/// The library says what can be done in its own terms (`VHDXError.Remedy`); here it becomes the
/// option or command of this tool that does it. A hint names an option only when the running
/// command accepts it (`restore` of a chain with a mismatched parent must not suggest
/// `--ignore-id-mismatch`, which `restore` would then refuse as unknown); otherwise it names the
/// command that does the job.
enum RemedyHint {
    static func text(_ remedy: VHDXError.Remedy, path: String?, accepted: HintOptions) -> String {
        let file = path.map { printable($0) } ?? "FILE"
        switch remedy {
        case .overwrite:
            return accepted.contains(.force) ? "use --force to replace it" : "choose another name, or remove it first"
        case .locateParent:
            if accepted.contains(.parentLookup) { return "use --parent PATH or --search-dir DIR" }
            if accepted.contains(.searchDir) { return "use --search-dir DIR" }
            return "vhdx reparent \(file) --parent PATH points it at its parent's new place"
        case .acceptParentMismatch:
            if accepted.contains(.ignoreIdMismatch) { return "--ignore-id-mismatch accepts it anyway" }
            return "vhdx check --chain \(file) shows each link; if that parent is the right one, vhdx reparent \(file) --parent PATH --ignore-id-mismatch relinks it"
        case .repair: return "vhdx check --repair writes the pending log into the file"
        case .checkImage: return "vhdx check lists every problem"
        case .relink(let set, let snapshot): return "vhdx set relink \(set) \(snapshot ?? "leaf") FILE"
        case .acceptModified(let set, let snapshot): return "vhdx set relink \(set) \(snapshot) FILE --accept-modified takes it as it is"
        case .discardLeaf:
            return accepted.contains(.discard) ? "use --discard, or delete snapshots first" : "vhdx set apply with --discard, or delete snapshots first"
        case .flattenFirst: return "flatten it with vhdx convert, or vhdx merge it first"
        }
    }

    /// The hint line for an error, if it has one, for the running command.
    static func line(for error: Error, accepted: HintOptions = RunningCommand.options) -> String? {
        if let e = error as? VHDXError, let r = e.remedy { return "  hint: " + text(r, path: e.path, accepted: accepted) }
        if let e = error as? ChangeTrackingError, e.reason == .notEnabled { return "  hint: vhdx track enable FILE" }
        return nil
    }
}

/// The options a hint may name, as far as the running command accepts them.
struct HintOptions: OptionSet {
    let rawValue: Int
    static let force = HintOptions(rawValue: 1 << 0)
    /// `--parent PATH` naming the top image's parent (ParentArguments), not a command's own
    /// `--parent` operand (create's, reparent's).
    static let parentLookup = HintOptions(rawValue: 1 << 1)
    static let searchDir = HintOptions(rawValue: 1 << 2)
    static let ignoreIdMismatch = HintOptions(rawValue: 1 << 3)
    static let discard = HintOptions(rawValue: 1 << 4)

    /// Read off the command's declared arguments, the way the parser itself finds them (by
    /// reflecting the command's property wrappers), so a hint can never drift from the options.
    init(of command: any ParsableCommand) {
        self = []
        for child in Mirror(reflecting: command).children {
            if child.value is OptionGroup<ParentArguments> {
                formUnion([.parentLookup, .searchDir, .ignoreIdMismatch])
                continue
            }
            switch child.label {
            case "_force": insert(.force)
            case "_discard": insert(.discard)
            case "_searchDirs": insert(.searchDir)
            case "_ignoreIdMismatch": insert(.ignoreIdMismatch)
            default: break
            }
        }
    }

    init(rawValue: Int) { self.rawValue = rawValue }
}

/// What the process is running, set once by `Tool.main` after parsing and before the command
/// runs (one thread then), read when an error is reported.
enum RunningCommand {
    nonisolated(unsafe) static var options: HintOptions = []
}
