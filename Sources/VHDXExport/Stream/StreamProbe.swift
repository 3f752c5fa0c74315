/// Tells an export stream by its first record's magic, for commands that read disk images and
/// would otherwise report the stream as a damaged image.
package enum StreamProbe {
    /// Whether `path` starts with an export record (`vhdxexp1`). Standard input is never probed.
    package static func isExportStream(_ path: String) -> Bool {
        guard path != "-", let source = try? ByteSource(path: path), let head = try? source.read(RecordHeader.magic.count) else { return false }
        return head == RecordHeader.magic
    }

    /// What to say instead of "corrupt image": what the file is and the commands that read it.
    package static func notAnImage(_ path: String) -> String {
        "\(path): an export stream of `vhdx export`, not a disk image: `vhdx verify IMAGE \(path)` compares an image with it, `vhdx restore OUT \(path)` makes an image of it"
    }
}
