#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX
import VHDXExport

/// `info`, `map` and `check` handed an export stream: they say what it is and which commands
/// read it, instead of failing on its magic as on a corrupt image's signature.
enum ExportStreamArgument {
    /// Exits with `code` (the one the README gives a file that is not VHDX) when `path` is an
    /// export stream; returns otherwise.
    static func refuse(_ path: String, code: Int32) {
        guard StreamProbe.isExportStream(path) else { return }
        Output.message("vhdx: " + StreamProbe.notAnImage(path))
        exit(code)
    }

    /// `check`'s findings on an export stream: one, saying what the file is, instead of what
    /// fails first when it is read as VHDX (its size, its signature).
    static func explain(_ findings: inout [Finding], file: String) {
        guard StreamProbe.isExportStream(file) else { return }
        findings = [Finding(.corruption, .notAnImage, "file identifier", at: 0, StreamProbe.notAnImage(file))]
    }
}
