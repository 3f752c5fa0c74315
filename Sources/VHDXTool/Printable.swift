/// Text from an image (creator, parent locator paths) or from file names, made safe to print on
/// a terminal: control characters (C0, DEL, C1) become `\xNN`, and characters that reorder or
/// hide text (bidi overrides and isolates, zero-width and other invisible format characters,
/// line/paragraph separators) and U+FFFD (what invalid UTF-16 decodes to) become `\u{NNNN}`.
/// An image could otherwise rewrite the user's terminal or make a path read as another.
/// JSON output does not need this: JSON.quote escapes controls and the text stays exact.
func printable(_ s: String) -> String {
    var out = ""
    for u in s.unicodeScalars {
        switch u.value {
        case 0x00..<0x20, 0x7F..<0xA0:
            let h = String(u.value, radix: 16)
            out += "\\x" + (h.count < 2 ? "0" : "") + h
        case 0x061C, 0x180E, 0x200B...0x200F, 0x2028...0x202E, 0x2060...0x2069, 0xFEFF, 0xFFF9...0xFFFD:
            out += "\\u{" + String(u.value, radix: 16, uppercase: true) + "}"
        default:
            out.unicodeScalars.append(u)
        }
    }
    return out
}
