import VHDXFormat

/// `check --repair`: replays a pending log into the file, rewrites both headers (restoring a
/// damaged copy), and restores a damaged or diverging region-table copy from the good one through
/// the log. Only what is redundant or journalled can be repaired; everything else is reported.
public enum Repairer {
    /// What a repair did, and what it could not do.
    public struct Outcome: Sendable {
        /// What was repaired.
        public var repaired: [String] = []
        /// Why nothing (more) could be repaired, when the image is damaged beyond what
        /// repair handles; the file is then unchanged.
        public var notRepaired: [String] = []
    }

    /// Replays a pending log into the file, rewrites both headers and restores a damaged region-table copy; what it cannot repair it reports and leaves the file as it was.
    public static func repair(path: String) throws(VHDXError) -> Outcome {
        let before = try Checker.check(path: path)
        var out = Outcome()
        let storage = try FileStorage(path: path, mode: .readWrite)
        let image: VHDXFile
        do {
            image = try VHDXFile(storage: storage)
        } catch where error.code == .corrupt {
            // The writable open validates everything before writing anything: the file is
            // byte-identical, and the damage is of a kind repair cannot undo.
            out.notRepaired.append("\(error.message). Repair fixes only a pending log, a damaged header copy and a damaged region-table copy; copy the readable data out with a conversion instead")
            return out
        }
        try image.openForWrites()
        if let r = before.logReplay { out.repaired.append("replayed \(r.entryCount) pending log entries into the file") }
        if before.findings.contains(where: { $0.structure == "header" && $0.repairable }) {
            out.repaired.append("rewrote both headers from the valid one")
        }
        let good = image.layout.regionTableCopy
        let offsets = Layout.regionTableOffsets
        let goodBytes = try storage.read(count: RegionTable.encodedSize, at: offsets[good])
        let otherBytes = try storage.read(count: RegionTable.encodedSize, at: offsets[1 - good])
        if goodBytes != otherBytes {
            try image.commit(MetadataTransaction(pages: LogEntry.Update.sectors(of: goodBytes, at: offsets[1 - good])))
            out.repaired.append("restored region table copy \(2 - good) from copy \(good + 1) through the log")
        }
        try image.close()
        return out
    }
}
