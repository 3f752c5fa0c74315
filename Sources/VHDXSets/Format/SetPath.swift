import VHDXFormat

/// The rule for every path a set file holds: relative to the set file's folder and staying
/// inside it, so a set never names a file on another volume or outside its own tree, whatever
/// the bytes say. UTF-8, at most `maxPathBytes`, '/'-separated, no empty, "." or ".."
/// component, no control character or backslash (a Windows separator would be read two ways).
public enum SetPath {
    public static func problem(_ path: String, allowEmpty: Bool = false) -> String? {
        if path.isEmpty { return allowEmpty ? nil : "is empty" }
        if path.utf8.count > SetFileLayout.maxPathBytes { return "is longer than \(SetFileLayout.maxPathBytes) bytes" }
        if path.utf8.first == UInt8(ascii: "/") { return "is absolute (set paths are relative to the set file's folder)" }
        if path.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) { return "holds a NUL or control character" }
        if path.utf8.contains(UInt8(ascii: "\\")) { return "holds a backslash" }
        for c in path.split(separator: "/", omittingEmptySubsequences: false) {
            if c.isEmpty { return "has an empty component" }
            if c == "." || c == ".." { return "has a \"\(c)\" component (it would leave or alias the set's folder)" }
        }
        return nil
    }

    static func check(_ path: String, field: String, allowEmpty: Bool = false, at offset: UInt64) throws(FormatError) {
        if let p = problem(path, allowEmpty: allowEmpty) {
            throw FormatError(.outOfRange, "set file", field: field, at: offset, "the path \(printable(path)) \(p)")
        }
    }

    /// A path as it can be shown in a message: control characters escaped.
    public static func printable(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            if u.value < 0x20 || u.value == 0x7F { out += "\\u{\(String(u.value, radix: 16))}" } else { out.unicodeScalars.append(u) }
        }
        return out + "\""
    }

    /// `path` joined to a folder ("" is the folder itself).
    public static func join(_ folder: String, _ name: String) -> String {
        folder.isEmpty ? name : folder + "/" + name
    }
}
