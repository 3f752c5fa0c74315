import Foundation

/// The raw content of a VHDX image as the qemu-img oracle reads it: the expected side of tests
/// that would otherwise take it from `vhdx convert`, whose reads are the code under test.
public enum QemuRaw {
    /// Writes `image`'s virtual disk to the raw file `out` with `qemu-img convert`. An image with
    /// a pending log (a killed writer, a dirty fixture) is replayed by qemu on a copy first:
    /// qemu-img refuses to read it otherwise, and the original must stay as it is. `dense`
    /// writes every byte (no holes in `out`).
    public static func convert(_ image: String, to out: String, dense: Bool = false) throws {
        try Shell.require("qemu-img")
        let convert = "qemu-img convert \(dense ? "-S 0 " : "")-f vhdx -O raw"
        let r = try Shell.run("\(convert) '\(image)' '\(out)'", allowFailure: true)
        guard r.status != 0 else { return }
        guard r.stderr.contains("replayed") else { throw TestFailure("qemu-img convert '\(image)' failed (\(r.status)): \(r.stderr)") }
        let copy = Fixtures.tempPath("replay-" + URL(fileURLWithPath: image).lastPathComponent)
        try FileManager.default.copyItem(atPath: image, toPath: copy)
        defer { unlink(copy) }
        try Shell.run("qemu-img check -q -r all -f vhdx '\(copy)' && \(convert) '\(copy)' '\(out)'")
    }
}
