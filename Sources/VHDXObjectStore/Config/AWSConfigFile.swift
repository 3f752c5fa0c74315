/// The INI files of the AWS tools: `~/.aws/credentials` (sections named `[NAME]`) and
/// `~/.aws/config` (`[default]` and `[profile NAME]`). Only top-level `key = value` lines are
/// read; indented lines (nested service sections) and comments are skipped.
struct AWSConfigFile {
    /// Section name (as written inside the brackets) -> keys (lower-cased) -> values.
    private(set) var sections: [String: [String: String]] = [:]

    init(text: String) {
        var current: String?
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = raw.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else { current = nil; continue }
                let name = String(line.dropFirst().dropLast()).trimmingWhitespace()
                current = name
                if sections[name] == nil { sections[name] = [:] }
                continue
            }
            // Nested `s3 =` blocks are indented: not ours.
            if raw.first == " " || raw.first == "\t" { continue }
            guard let section = current, let eq = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<eq]).trimmingWhitespace().lowercased()
            let value = String(line[line.index(after: eq)...]).trimmingWhitespace()
            sections[section]![key] = value
        }
    }

    /// `~/.aws/credentials`: the section is the profile's name.
    func credentialsSection(profile: String) -> [String: String]? { sections[profile] }

    /// `~/.aws/config`: `[default]` for the default profile, `[profile NAME]` for others (the
    /// AWS CLI also accepts `[profile default]`).
    func configSection(profile: String) -> [String: String]? {
        if profile == "default" { return sections["default"] ?? sections["profile default"] }
        return sections["profile \(profile)"]
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return String(s)
    }
}
