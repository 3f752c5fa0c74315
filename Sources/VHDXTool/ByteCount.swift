import ArgumentParser

/// A byte count given on the command line: a whole number, optionally with a binary suffix
/// K, M, G, T (also KiB/MiB/GiB/TiB, any case; B or none for bytes), as qemu-img accepts. "0x"
/// hex is accepted too. A decimal fraction is accepted only when it comes to whole bytes
/// (`1.5G`, `0.5K`; not `0.3K`). Decimal units (`MB` = 10^6) are refused rather than guessed:
/// `10MB` is 10 MiB to some tools and 10,000,000 bytes to others.
struct ByteCount: ExpressibleByArgument, Equatable, CustomStringConvertible {
    let bytes: UInt64

    init(bytes: UInt64) { self.bytes = bytes }

    init?(argument: String) {
        guard let parsed = try? ByteCount.parse(argument) else { return nil }
        self = parsed
    }

    /// "32M", "1G", "1536K": the largest unit that divides exactly, as the option would be typed.
    var description: String {
        for (suffix, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] where bytes != 0 && bytes % (1 << shift) == 0 {
            return "\(bytes >> shift)\(suffix)"
        }
        return String(bytes)
    }

    var defaultValueDescription: String { description }

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// A negative number given as SIZE (`create F -5`) never reaches the parser: it reads as an
    /// option and SIZE looks missing. This names it, so "size is needed" does not mislead.
    static var negativeArgumentNote: String {
        guard let arg = CommandLine.arguments.dropFirst().first(where: { $0.count > 1 && $0.hasPrefix("-") && $0.dropFirst().first!.isNumber }) else { return "" }
        return " (\(arg) is negative, which no size can be)"
    }

    /// For `@Option(transform:)`: a refused value's reason then reaches the usage error, where a
    /// failable `init?(argument:)` could only say "invalid".
    static let parser: @Sendable (String) throws -> ByteCount = { try parse($0) }

    /// Parses `argument`, saying what is wrong with it when it is not a size (the option's
    /// `transform`, so the reason reaches the usage error).
    static func parse(_ argument: String) throws -> ByteCount {
        let text = argument.trimmingCharacters(in: " ")
        func invalid(_ why: String) -> Invalid { Invalid(description: why) }
        guard !text.isEmpty else { throw invalid("empty; give a number of bytes, optionally with K, M, G or T (binary: 1K = 1024)") }
        if text.hasPrefix("-") { throw invalid("negative; a size or offset counts bytes from zero") }
        let hex = text.lowercased().hasPrefix("0x")
        let body = hex ? text.dropFirst(2) : Substring(text)
        let isDigit: (Character) -> Bool = hex ? { $0.isHexDigit } : { $0.isASCII && $0.isNumber }
        let number = body.prefix { isDigit($0) || (!hex && $0 == ".") }
        let suffix = body.dropFirst(number.count).lowercased()
        let units: [String: UInt64] = ["": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20,
                                       "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40]
        guard let multiplier = units[suffix] else {
            if ["kb", "mb", "gb", "tb"].contains(suffix) {
                let binary = suffix.prefix(1).uppercased()
                throw invalid("decimal units like \(suffix.uppercased()) are not accepted (10MB is 10,000,000 bytes to some tools, 10 MiB to others); use \(binary) or \(binary)iB for the binary unit, or give the bytes")
            }
            throw invalid("unknown suffix \"\(body.dropFirst(number.count))\"; use K, M, G, T (or KiB, MiB, GiB, TiB; binary), B or none for bytes")
        }
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard !number.isEmpty, parts.count <= 2, !parts[0].isEmpty || parts.count == 2, parts.allSatisfy({ !$0.contains(".") }),
              !(parts.count == 2 && parts[1].isEmpty) else {
            throw invalid("not a number")
        }
        let tooLarge = invalid("too large: more than \(UInt64.max) bytes")
        guard let whole = parts[0].isEmpty ? 0 : UInt64(parts[0], radix: hex ? 16 : 10) else { throw tooLarge }
        var (bytes, overflow) = whole.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { throw tooLarge }
        if parts.count == 2 {
            // fraction × multiplier must come to whole bytes: 1.5K = 1536, 0.3K = 307.2 is refused.
            let digits = String(parts[1].reversed().drop { $0 == "0" }.reversed())
            if !digits.isEmpty {
                guard digits.count <= 18, let fraction = UInt64(digits) else { throw invalid("not a whole number of bytes (too many decimal places)") }
                var scale: UInt64 = 1
                for _ in 0..<digits.count { scale *= 10 }
                let (q, r) = scale.dividingFullWidth(fraction.multipliedFullWidth(by: multiplier))
                guard r == 0 else { throw invalid("not a whole number of bytes; write the size in a smaller unit or in bytes") }
                (bytes, overflow) = bytes.addingReportingOverflow(q)
                guard !overflow else { throw tooLarge }
            }
        }
        return ByteCount(bytes: bytes)
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}
