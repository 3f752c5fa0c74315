/// Starts the disk writeback of a file being built every `step` bytes written to it, so the
/// flush before it is published does not have to write the whole output at once (on ext4 that
/// flush took most of a convert's time, after the copy instead of beside it). Non-blocking:
/// it only starts writing pages already dirty.
package final class WritebackPacer {
    package static let step: UInt64 = 64 << 20
    let out: FileStorage
    private var since: UInt64 = 0

    package init(_ out: FileStorage) { self.out = out }

    /// `count` more bytes were written somewhere in the file.
    package func wrote(_ count: UInt64) {
        since += count
        if since >= WritebackPacer.step {
            out.startWriteback(offset: 0, length: 0)  // the whole file: whatever is dirty
            since = 0
        }
    }
}
