import ArgumentParser
import VHDXChangeTracking

/// A change ID given on the command line (`track changes --since/--until`, `export --since`).
///
/// Text that is not a change ID at all is a usage error (exit 64), never "unknown ID" (exit 4):
/// exit 4 tells a backup script to take a full backup, so a typo, an empty variable or a
/// captured trailing newline would silently turn every incremental into a full one. Exit 4
/// stays for well-formed IDs tracking cannot answer. The syntax itself is `ChangeID(text:)`'s.
enum ChangeIDArgument {
    static let shape = "vhdxct1:<disk id>:<tracking id>:<generation>:<epoch>[:<tag>], as `vhdx track seal` prints it"

    /// The ID, or a `ValidationError` naming the option and what is wrong with the text.
    static func parse(_ text: String, option: String) throws(ValidationError) -> ChangeID {
        if let id = ChangeID(text: text) { return id }
        throw ValidationError("\(option): not a change ID: \"\(printable(text))\" (\(problem(text))); change IDs look like \(shape)")
    }

    /// What is visibly wrong, for the message (the full syntax check is `ChangeID(text:)`).
    static func problem(_ text: String) -> String {
        if text.isEmpty { return "empty" }
        if text.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) {
            return "it contains whitespace or a control character, a trailing newline perhaps"
        }
        if text.unicodeScalars.contains(where: { ("A"..."Z").contains($0) }) { return "it has upper-case letters; change IDs are lower-case" }
        if !text.hasPrefix("vhdxct1:") { return "it does not start with vhdxct1:" }
        let fields = text.split(separator: ":", omittingEmptySubsequences: false).count
        if fields < 5 || fields > 6 { return "\(fields) fields separated by ':'" }
        return "a field is not a 32-digit lowercase hex GUID or a decimal number in range"
    }
}

/// A command whose options carry change IDs. `Tool.main` checks them before the command runs,
/// so every such option (also those of commands in other files) gets the same usage error.
protocol TakesChangeIDs {
    /// (option, text) of each change ID given.
    var changeIDArguments: [(option: String, text: String)] { get }
}

extension ChangeIDArgument {
    /// Exits 64 with the usage error when one of `command`'s change IDs is malformed.
    static func check(_ command: any ParsableCommand) {
        guard let c = command as? TakesChangeIDs else { return }
        for (option, text) in c.changeIDArguments {
            do { _ = try parse(text, option: option) } catch { Output.usageError(error.message, for: command) }
        }
    }
}

extension ExportCommand: TakesChangeIDs {
    var changeIDArguments: [(option: String, text: String)] { since.map { [("--since", $0)] } ?? [] }
}
