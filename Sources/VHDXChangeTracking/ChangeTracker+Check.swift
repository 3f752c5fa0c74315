import VHDX
import VHDXFormat

extension ChangeTracker {
    /// What `check` reports about tracking: a damaged region or stored set is corruption (and
    /// tracking is reset rather than trusted); an outside writer or an unclean stop is a notice.
    /// A set that cannot be read (an I/O error) is not a finding: the check could not run.
    public func checkFindings() throws(VHDXError) -> [Finding] {
        var out: [Finding] = []
        if let (code, text) = pendingReset {
            out.append(Finding(code == .damaged ? .corruption : .notice, .trackingReset, "change tracking", at: region.fileOffset,
                               "\(text); tracking is reset and resumes from the next seal"))
            return out
        }
        for note in notes { out.append(Finding(.notice, .trackingNotice, "change tracking", at: region.fileOffset, note)) }
        for r in header.records {
            do { _ = try readSet(slot: r.slot, count: r.runCount, flags: r.flags, checksum: r.checksum) } catch {
                if error.code == .io { throw error }
                out.append(Finding(.corruption, .trackingDamaged, "change tracking", at: region.fileOffset + header.geometry.slotOffset(r.slot),
                                   "the change set of epoch \(r.epoch) is damaged (\(error.message)); IDs before it cannot be answered"))
            }
        }
        return out
    }
}
