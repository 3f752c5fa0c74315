import VHDXFormat

/// What a writable open checks before anything can be written: the checker's allocation rules
/// (blocks, bitmaps, log and regions inside the file, none overlapping, states the disk type can
/// hold). A block pointing past the end would make the first write into it grow the file by
/// whatever the corrupt entry says (hundreds of GiB from a fuzzed entry); two entries sharing
/// space would let one write destroy the other's data. Reads can tolerate such an image; writes
/// must not, so it is refused with the problems listed, as `check` reports them.
enum WriteSafety {
    /// Returns where new allocations may start: past every object, rounded up to 1 MiB.
    static func validate(layout: ImageLayout, io: Storage, fileSize: UInt64, path: String) throws(VHDXError) -> UInt64 {
        var checks = BATChecks(layout: layout, fileSize: fileSize)
        let table = BATTable(storage: io, regionOffset: layout.batRegion.fileOffset, entryCount: layout.batEntriesUsed)
        try table.forEachPage { (first, raw) throws(VHDXError) in checks.visit(page: raw, first: first) }
        checks.finish()
        if let first = checks.writeHazards.first {
            let more = checks.writeHazards.count > 1 ? " (and \(checks.writeHazards.count - 1) more problems)" : ""
            throw VHDXError(.corrupt, "refusing to write to a damaged image: \(first.structure): \(first.message)\(more); nothing was written; a check lists every problem",
                            path: path, at: first.fileOffset, remedy: .checkImage)
        }
        return checks.nominalEnd.roundedUp(to: Layout.MiB) ?? checks.nominalEnd
    }
}
