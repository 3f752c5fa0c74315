import VHDXFormat

/// The file of a writable open, as the engine writes it. Opening for writing changes nothing:
/// the first write, resize or discard first runs `prepare` (renew FileWriteGuid, replay a
/// pending log, see `VHDXFile.prepareForWrites`). So a command that is refused after the open
/// (a range past the end, a parent that cannot be found, an observer that says no) leaves the
/// file byte-identical, and every path that writes passes the same gate.
final class WriteGate: Storage {
    let base: Storage
    /// Runs once, before the first change reaches `base`; it writes to `base` directly.
    var prepare: (() throws(VHDXError) -> Void)?
    private(set) var opened = false

    init(base: Storage) { self.base = base }

    var isWritable: Bool { base.isWritable }
    var name: String { base.name }

    /// Runs `prepare` if it has not run yet. A `prepare` that throws leaves the gate shut, so
    /// the next write tries again rather than writing past a half-done preparation.
    func open() throws(VHDXError) {
        guard !opened, !opening else { return }
        opening = true
        defer { opening = false }
        try prepare?()
        opened = true
        prepare = nil
    }

    /// Set while `prepare` runs: what it (or an observer it calls) writes passes straight on.
    private var opening = false

    func size() throws(VHDXError) -> UInt64 { try base.size() }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        try base.read(into: buffer, at: offset)
    }
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        try open()
        try base.write(buffer, at: offset)
    }
    func resize(to size: UInt64) throws(VHDXError) {
        try open()
        try base.resize(to: size)
    }
    func discard(offset: UInt64, length: UInt64) throws(VHDXError) {
        try open()
        try base.discard(offset: offset, length: length)
    }
    /// A flush with nothing written has nothing to make durable, so it does not open the gate.
    func synchronize() throws(VHDXError) {
        guard opened || opening else { return }
        try base.synchronize()
    }
}
