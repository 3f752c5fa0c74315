/// A minimal ordered JSON value: key order is kept so output is stable for scripts and tests.
enum JSON {
    case string(String)
    case int(UInt64)
    case double(Double)
    case bool(Bool)
    case null
    case array([JSON])
    case object([(String, JSON)])

    var text: String {
        var s = ""
        write(into: &s, indent: 0)
        return s
    }

    private func write(into s: inout String, indent: Int) {
        let pad = String(repeating: "  ", count: indent + 1)
        let close = String(repeating: "  ", count: indent)
        switch self {
        case .string(let v): s += JSON.quote(v)
        case .int(let v): s += String(v)
        case .double(let v): s += v.isFinite ? String((v * 100).rounded() / 100) : "null"
        case .bool(let v): s += v ? "true" : "false"
        case .null: s += "null"
        case .array(let items):
            if items.isEmpty { s += "[]"; return }
            s += "[\n"
            for (i, item) in items.enumerated() {
                s += pad
                item.write(into: &s, indent: indent + 1)
                s += i + 1 < items.count ? ",\n" : "\n"
            }
            s += close + "]"
        case .object(let fields):
            if fields.isEmpty { s += "{}"; return }
            s += "{\n"
            for (i, (k, v)) in fields.enumerated() {
                s += pad + JSON.quote(k) + ": "
                v.write(into: &s, indent: indent + 1)
                s += i + 1 < fields.count ? ",\n" : "\n"
            }
            s += close + "}"
        }
    }

    static func quote(_ v: String) -> String {
        var out = "\""
        for u in v.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
