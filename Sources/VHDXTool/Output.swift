#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import VHDX

/// stdout is for data (text or JSON), stderr for messages and progress.
enum Output {
    static func data(_ s: String, skipEmpty: Bool = false) {
        if skipEmpty && s.isEmpty { return }
        print(s)
    }

    static func message(_ s: String) { raw(s + "\n") }

    /// Writes straight to fd 2 (unbuffered, and no shared C `stderr` global under Swift 6).
    static func raw(_ s: String) {
        var bytes = Array(s.utf8)
        bytes.withUnsafeMutableBytes { b in
            var done = 0
            while done < b.count {
                let n = write(2, b.baseAddress! + done, b.count - done)
                if n <= 0 { break }
                done += n
            }
        }
    }

    /// "2.5 GiB (2684354560 bytes)": human plus exact.
    static func size(_ bytes: UInt64) -> String {
        bytes < 1024 ? "\(bytes) bytes" : "\(humanSize(bytes)) (\(bytes) bytes)"
    }

    static func humanSize(_ bytes: UInt64) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var v = Double(bytes)
        var u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        if u == 0 { return "\(bytes) bytes" }
        let rounded = (v * 100).rounded() / 100
        return (rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)) + " " + units[u]
    }

    /// A usage error found after parsing (exit 64), printed the way the parser prints its own:
    /// the message, then the command's usage.
    static func usageError(_ text: String, for command: any ParsableCommand) -> Never {
        message("Error: \(text)\nUsage: \(Tool.usageString(for: type(of: command)))")
        exit(64)
    }

    /// Exits with `code` after printing the error's full description.
    static func fail(_ error: Error, code: Int32 = 1) -> Never {
        let error = CarriedError.original(error)
        if let e = error as? VHDXError { message("vhdx: \(e.detailedDescription)") } else { message("vhdx: \(error)") }
        if let hint = RemedyHint.line(for: error) { message(hint) }
        exit(code)
    }
}

/// Progress on stderr: a rewritten line on a terminal, a plain line every 5% otherwise (CI logs).
final class ProgressReporter {
    let enabled: Bool
    let tty: Bool
    /// -5, not -1: in Swift -1 / 5 == 0, which would hide the 0–4% line on a non-terminal.
    var lastPercent = -5
    let label: String

    init(label: String, requested: Bool) {
        tty = isatty(2) != 0
        enabled = requested || tty
        self.label = label
    }

    func update(_ done: UInt64, _ total: UInt64) {
        guard enabled, total > 0 else { return }
        let percent = Int(done * 100 / total)
        guard percent != lastPercent, tty || percent / 5 != lastPercent / 5 || percent == 100 else { return }
        lastPercent = percent
        let text = "\(label): \(percent)% (\(Output.humanSize(done)) of \(Output.humanSize(total)))"
        if tty { Output.raw("\r" + text + (percent == 100 ? "\n" : "")) }
        else { Output.message(text) }
    }
}
