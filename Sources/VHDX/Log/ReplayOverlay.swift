import VHDXFormat

/// A read-only view of a file with a log sequence applied in memory (docs/vhdx-format.md §5.5): the
/// region tables, metadata and BAT are read through it, and the file itself is never written.
/// Later updates win over earlier ones, as a real replay in order would leave them.
package final class ReplayOverlay: Storage {
    let base: Storage
    private var sectors: [UInt64: [UInt8]] = [:]
    private var zeroRanges: [Range<UInt64>] = []
    private var virtualSize: UInt64 = 0
    private var touchedLow: UInt64 = .max
    private var touchedHigh: UInt64 = 0
    package var isWritable: Bool { false }
    package var name: String { base.name }

    /// Caps the bytes the overlay holds; the log itself is bounded by its u32 length.
    static let maxOverlayBytes = 256 << 20
    /// No structure of a valid file lies past this: 64 TiB of payload plus bitmaps and metadata.
    static let maxFileOffset = Layout.maxVirtualDiskSize * 2

    package init(base: Storage, sequence: LogSequence) throws(VHDXError) {
        self.base = base
        var size = try base.size()
        var held = 0
        for located in sequence.entries {
            for u in located.entry.updates {
                switch u {
                case let .data(offset, bytes):
                    guard offset <= ReplayOverlay.maxFileOffset else {
                        throw VHDXError(.corrupt, "log data descriptor targets file offset \(offset), beyond any VHDX file", path: base.name, at: offset)
                    }
                    sectors[offset / 4096] = bytes
                    held += 4096
                    size = max(size, offset + 4096)
                    touch(offset, 4096)
                case let .zero(offset, length):
                    let (end, o) = offset.addingReportingOverflow(length)
                    guard !o, end <= ReplayOverlay.maxFileOffset else {
                        throw VHDXError(.corrupt, "log zero descriptor [\(offset), +\(length)) is out of range", path: base.name, at: offset)
                    }
                    for key in sectors.keys where key * 4096 >= offset && key * 4096 < end { sectors[key] = nil }
                    zeroRanges.append(offset..<end)
                    size = max(size, end)
                    touch(offset, length)
                }
            }
            guard held <= ReplayOverlay.maxOverlayBytes else {
                throw VHDXError(.tooLarge, "the pending log holds more than \(ReplayOverlay.maxOverlayBytes) bytes; replay it into the file with a repair", path: base.name, remedy: .repair)
            }
        }
        self.virtualSize = max(size, sequence.head.lastFileOffset)
    }

    private func touch(_ offset: UInt64, _ length: UInt64) {
        touchedLow = min(touchedLow, offset)
        touchedHigh = max(touchedHigh, offset + length)
    }

    package func size() throws(VHDXError) -> UInt64 { virtualSize }

    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        let count = UInt64(buffer.count)
        guard offset <= virtualSize, count <= virtualSize - offset else {
            throw VHDXError(.outOfBounds, "read of \(count) bytes at \(offset) runs past the end of the replayed file (\(virtualSize) bytes)", path: base.name, at: offset)
        }
        let baseSize = try base.size()
        let fromBase = offset < baseSize ? min(count, baseSize - offset) : 0
        if fromBase > 0 {
            try base.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(fromBase)]), at: offset)
        }
        if fromBase < count {
            UnsafeMutableRawBufferPointer(rebasing: buffer[Int(fromBase)...]).zeroFill()
        }
        let end = offset + count
        guard offset < touchedHigh, end > touchedLow else { return }
        for z in zeroRanges where z.lowerBound < end && z.upperBound > offset {
            let a = max(z.lowerBound, offset) - offset, b = min(z.upperBound, end) - offset
            UnsafeMutableRawBufferPointer(rebasing: buffer[Int(a)..<Int(b)]).zeroFill()
        }
        var s = offset / 4096
        while s * 4096 < end {
            if let sector = sectors[s] {
                let sStart = s * 4096
                let a = max(sStart, offset), b = min(sStart + 4096, end)
                sector.withUnsafeBytes { src in
                    UnsafeMutableRawBufferPointer(rebasing: buffer[Int(a - offset)..<Int(b - offset)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: src[Int(a - sStart)..<Int(b - sStart)]))
                }
            }
            s += 1
        }
    }

    package func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        throw VHDXError(.readOnly, "the image was opened read-only with its log replayed in memory", path: base.name, at: offset)
    }

    package func resize(to size: UInt64) throws(VHDXError) {
        throw VHDXError(.readOnly, "the image was opened read-only with its log replayed in memory", path: base.name)
    }

    package func synchronize() throws(VHDXError) {}
}
