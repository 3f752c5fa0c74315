import ArgumentParser
import VHDXSets

/// The `.vhds` rule for arguments: a set is named by its extension (any case) or recognised by
/// our signature (`VHDSet.looksLikeSet`).
enum SetName {
    static func isSetName(_ path: String) -> Bool { OutputFormat.fileExtension(path) == "vhds" }

    /// Refuses a set given to a command that works on single VHDX files (resize, compact, merge,
    /// reparent, create --parent): opened as a VHDX it would only be "corrupt image". `role`
    /// names the argument, `instead` what to do with a set. A usage error (exit 64).
    static func refuse(_ path: String, as role: String, in command: String, _ instead: String) throws {
        guard try VHDSet.looksLikeSet(path) else { return }
        let what = isSetName(path) ? "names a VHD Set (.vhds)" : "is a VHD Set (it starts with the set signature)"
        throw ValidationError("\(role) \(printable(path)) \(what), and `vhdx \(command)` works on single VHDX files: \(instead)")
    }
}
