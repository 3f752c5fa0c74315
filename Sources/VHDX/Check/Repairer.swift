import VHDXFormat

/// `check --repair`: replays a pending log into the file, rewrites both headers (restoring a
/// damaged copy), and restores a damaged or diverging region-table copy from the good one through
/// the log. Only what is redundant or journalled can be repaired; everything else is reported.
public enum Repairer {
    /// Returns what was repaired.
    public static func repair(path: String) throws(VHDXError) -> [String] {
        let before = try Checker.check(path: path)
        var done: [String] = []
        let storage = try FileStorage(path: path, mode: .readWrite)
        // A writable open renews both headers and replays any pending log.
        let image = try VHDXFile(storage: storage)
        if let r = before.logReplay { done.append("replayed \(r.entryCount) pending log entries into the file") }
        if before.findings.contains(where: { $0.structure == "header" && $0.repairable }) {
            done.append("rewrote both headers from the valid one")
        }
        let good = image.layout.regionTableCopy
        let offsets = Layout.regionTableOffsets
        let goodBytes = try storage.read(count: RegionTable.encodedSize, at: offsets[good])
        let otherBytes = try storage.read(count: RegionTable.encodedSize, at: offsets[1 - good])
        if goodBytes != otherBytes {
            try image.commitMetadata(LogEntry.Update.sectors(of: goodBytes, at: offsets[1 - good]))
            try image.close()
            done.append("restored region table copy \(2 - good) from copy \(good + 1) through the log")
        }
        return done
    }
}
