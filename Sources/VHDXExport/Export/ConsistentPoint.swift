import VHDX
import VHDXChangeTracking
import VHDXFormat
import VHDXSets

/// The source of an export held at one change ID while it is read.
///
/// A disk or chain: opened writable (its writer lock keeps every other writer out), its change
/// ID sealed; nothing writes it until `release`. A VHD Set: a checkpoint is taken (its change
/// ID sealed, its file frozen while new writes would go to the new leaf), the frozen chain
/// read, and the checkpoint deleted on release, its reference point kept so the next
/// incremental's base stays answerable.
final class ConsistentPoint {
    /// The disk at the target ID; nil once released.
    private(set) var image: VHDXFile!
    let targetID: ChangeID
    let granule: UInt64
    private let set: VHDSet?
    private let checkpoint: GUID?
    /// Files this export reads, which its output must never replace.
    let inputs: [String]

    private init(image: VHDXFile, targetID: ChangeID, granule: UInt64, set: VHDSet?, checkpoint: GUID?, inputs: [String]) {
        self.image = image
        self.targetID = targetID
        self.granule = granule
        self.set = set
        self.checkpoint = checkpoint
        self.inputs = inputs
    }

    /// Checks first that `since` (if any) can be answered, so a refused incremental seals
    /// nothing and takes no checkpoint.
    static func take(_ path: String, since: ChangeID?) throws -> ConsistentPoint {
        if VHDSet.looksLikeSet(path) {
            let set = try VHDSet.open(path: path, writable: true)
            if let since { _ = try set.changes(since: since, maxRanges: 1) }
            let entry = try set.checkpoint()
            guard let id = entry.changeID else {
                _ = try? set.delete(entry.id)
                throw ChangeTrackingError(.notEnabled, "change tracking is not enabled on the set's disk (`vhdx track enable` first)", path: path)
            }
            do {
                let image = try VHDXFile.open(path: set.absolute(entry.path))
                let granule = try ChangeTracker.view(of: image, observe: false)?.header.geometry.granule ?? 65536
                return ConsistentPoint(image: image, targetID: id, granule: granule, set: set, checkpoint: entry.id,
                                       inputs: [path] + image.chain.map(\.path) + [set.leafPath])
            } catch {
                _ = try? set.delete(entry.id, keepReference: true)
                throw error
            }
        }
        let image = try VHDXFile.open(path: path, writable: true)
        let tracker = try ChangeTracking.tracker(of: image)
        if let since { _ = try ChangeTracking.changes(in: image, since: since, maxRanges: 1) }
        let id = try tracker.seal()
        return ConsistentPoint(image: image, targetID: id, granule: tracker.header.geometry.granule, set: nil, checkpoint: nil,
                               inputs: image.chain.map(\.path))
    }

    /// Every byte range that may differ from `since`, as the disk's tracking answers (never
    /// smaller than the truth; nothing is written to the disk after the seal, so "now" is the
    /// target ID).
    func changes(since: ChangeID) throws -> [ChangedRange] {
        if let set { return try set.changes(since: since).ranges }
        return try ChangeTracking.changes(in: image, since: since).ranges
    }

    /// Ends the hold: closes the disk (a set's checkpoint is deleted, its reference point kept).
    func release() throws {
        guard image != nil else { return }
        if set == nil { try image.close() }
        // The handles (and their file locks) must go first: a set's delete merges into the frozen file.
        image = nil
        if let set, let checkpoint { try set.delete(checkpoint, keepReference: true) }
    }
}
