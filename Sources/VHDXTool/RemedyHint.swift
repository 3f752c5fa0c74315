import VHDX
import VHDXChangeTracking

/// The library says what can be done in its own terms (`VHDXError.Remedy`); here it becomes the
/// option or command of this tool that does it.
enum RemedyHint {
    static func text(_ remedy: VHDXError.Remedy) -> String {
        switch remedy {
        case .overwrite: "use --force to replace it"
        case .locateParent: "use --parent PATH or --search-dir DIR"
        case .acceptParentMismatch: "--ignore-id-mismatch accepts it anyway"
        case .repair: "vhdx check --repair writes the pending log into the file"
        case .checkImage: "vhdx check lists every problem"
        case .relink(let set, let snapshot): "vhdx set relink \(set) \(snapshot ?? "leaf") FILE"
        case .acceptModified(let set, let snapshot): "vhdx set relink \(set) \(snapshot) FILE --accept-modified takes it as it is"
        case .discardLeaf: "use --discard, or delete snapshots first"
        case .flattenFirst: "flatten it with vhdx convert, or vhdx merge it first"
        }
    }

    /// The hint line for an error, if it has one.
    static func line(for error: Error) -> String? {
        if let e = error as? VHDXError, let r = e.remedy { return "  hint: " + text(r) }
        if let e = error as? ChangeTrackingError, e.reason == .notEnabled { return "  hint: vhdx track enable FILE" }
        return nil
    }
}
