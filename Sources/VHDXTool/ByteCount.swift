import ArgumentParser

/// A byte count given on the command line: a plain number or one with a binary suffix
/// K, M, G, T (also KiB/MiB/GiB/TiB, any case), as qemu-img accepts. "0x" hex is accepted too.
struct ByteCount: ExpressibleByArgument, Equatable {
    let bytes: UInt64

    init(bytes: UInt64) { self.bytes = bytes }

    init?(argument: String) {
        var s = Substring(argument.trimmingCharacters(in: " "))
        let units: [(String, UInt64)] = [("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("tib", 1 << 40),
                                         ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40), ("b", 1)]
        var multiplier: UInt64 = 1
        for (suffix, m) in units where s.lowercased().hasSuffix(suffix) && s.count > suffix.count {
            multiplier = m
            s = s.dropLast(suffix.count)
            break
        }
        let value: UInt64?
        if s.lowercased().hasPrefix("0x") { value = UInt64(s.dropFirst(2), radix: 16) } else { value = UInt64(s) }
        guard let value else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return nil }
        bytes = product
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
