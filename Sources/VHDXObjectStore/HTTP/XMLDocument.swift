/// An S3 XML response as a small tree (element names without namespace prefixes, text,
/// children). Hand-parsed: S3's answers use elements, text, the five named entities and
/// character references, nothing else; Foundation's XMLParser would load libxml2 and ICU into
/// every `vhdx` process at start (8 ms of its 20), for a few responses of a few kilobytes.
struct XMLElement: Sendable {
    var name: String
    var text: String = ""
    var children: [XMLElement] = []

    /// The first child named `name`.
    func child(_ name: String) -> XMLElement? { children.first { $0.name == name } }
    /// Every child named `name`.
    func all(_ name: String) -> [XMLElement] { children.filter { $0.name == name } }
    /// The text of the first child named `name`.
    func value(_ name: String) -> String? { child(name)?.text }

    /// The document's root element, or nil when the bytes are not well-formed (as far as this
    /// reader looks: tags balance, entities are known, nothing but markup around the root).
    static func parse(_ bytes: [UInt8]) -> XMLElement? {
        var reader = MiniXML(bytes)
        return reader.document()
    }
}

/// The parser behind `XMLElement.parse`: a cursor over the bytes; every method returns nil
/// (malformed) rather than trapping. Nesting is capped, so hostile input cannot exhaust the stack.
private struct MiniXML {
    let b: [UInt8]
    var i = 0
    static let maxDepth = 64

    init(_ bytes: [UInt8]) { b = bytes }

    func at(_ s: String) -> Bool {
        let u = Array(s.utf8)
        return i + u.count <= b.count && Array(b[i..<(i + u.count)]) == u
    }

    /// Moves past the next `s`; false if it never comes.
    mutating func skip(past s: String) -> Bool {
        while i < b.count { if at(s) { i += s.utf8.count; return true }; i += 1 }
        return false
    }

    mutating func skipSpace() { while i < b.count, [0x20, 0x09, 0x0A, 0x0D].contains(b[i]) { i += 1 } }

    /// Declarations, comments and processing instructions between elements.
    mutating func skipMisc() -> Bool {
        while true {
            skipSpace()
            if at("<?") { guard skip(past: "?>") else { return false } }
            else if at("<!--") { guard skip(past: "-->") else { return false } }
            else if at("<!") && !at("<![CDATA[") { guard skip(past: ">") else { return false } }
            else { return true }
        }
    }

    mutating func document() -> XMLElement? {
        guard skipMisc(), i < b.count, b[i] == UInt8(ascii: "<"), let root = element(depth: 0), skipMisc(), i == b.count else { return nil }
        return root
    }

    mutating func element(depth: Int) -> XMLElement? {
        guard depth < MiniXML.maxDepth, i < b.count, b[i] == UInt8(ascii: "<") else { return nil }
        i += 1
        guard let qualified = name() else { return nil }
        var node = XMLElement(name: local(qualified))
        // Attributes (xmlns and the like) are not needed: skipped, quotes respected.
        while i < b.count, b[i] != UInt8(ascii: ">"), !at("/>") {
            if b[i] == UInt8(ascii: "\"") || b[i] == UInt8(ascii: "'") {
                let quote = b[i]
                i += 1
                while i < b.count, b[i] != quote { i += 1 }
                guard i < b.count else { return nil }
            }
            i += 1
        }
        guard i < b.count else { return nil }
        if at("/>") { i += 2; return node }
        i += 1
        var raw: [UInt8] = []
        while i < b.count {
            if at("</") {
                i += 2
                guard let closing = name(), closing == qualified else { return nil }
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: ">") else { return nil }
                i += 1
                guard let text = MiniXML.decode(raw) else { return nil }
                node.text = text
                return node
            } else if at("<![CDATA[") {
                i += 9
                let start = i
                guard skip(past: "]]>") else { return nil }
                // CDATA is literal: escaped so the entity decoding below leaves it as it was.
                for c in b[start..<(i - 3)] { raw += c == UInt8(ascii: "&") ? Array("&amp;".utf8) : [c] }
            } else if at("<!--") || at("<?") {
                guard skip(past: at("<!--") ? "-->" : "?>") else { return nil }
            } else if b[i] == UInt8(ascii: "<") {
                guard let child = element(depth: depth + 1) else { return nil }
                node.children.append(child)
            } else {
                raw.append(b[i])
                i += 1
            }
        }
        return nil
    }

    /// A tag's name: up to white space, `/` or `>`.
    mutating func name() -> String? {
        let start = i
        while i < b.count, ![0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: "/"), UInt8(ascii: ">")].contains(b[i]) { i += 1 }
        guard i > start else { return nil }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    func local(_ qualified: String) -> String {
        guard let colon = qualified.lastIndex(of: ":") else { return qualified }
        return String(qualified[qualified.index(after: colon)...])
    }

    /// Text with its entity and character references replaced; nil for an unknown one.
    static func decode(_ raw: [UInt8]) -> String? {
        guard raw.contains(UInt8(ascii: "&")) else { return String(decoding: raw, as: UTF8.self) }
        var out: [UInt8] = []
        var k = 0
        while k < raw.count {
            guard raw[k] == UInt8(ascii: "&") else { out.append(raw[k]); k += 1; continue }
            guard let semi = raw[k...].firstIndex(of: UInt8(ascii: ";")), semi - k <= 12 else { return nil }
            let entity = String(decoding: raw[(k + 1)..<semi], as: UTF8.self)
            switch entity {
            case "amp": out.append(UInt8(ascii: "&"))
            case "lt": out.append(UInt8(ascii: "<"))
            case "gt": out.append(UInt8(ascii: ">"))
            case "quot": out.append(UInt8(ascii: "\""))
            case "apos": out.append(UInt8(ascii: "'"))
            default:
                let hex = entity.hasPrefix("#x") || entity.hasPrefix("#X")
                guard entity.hasPrefix("#"), let code = UInt32(entity.dropFirst(hex ? 2 : 1), radix: hex ? 16 : 10),
                      let scalar = Unicode.Scalar(code) else { return nil }
                out += Array(String(Character(scalar)).utf8)
            }
            k = semi + 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
