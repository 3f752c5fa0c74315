import VHDX
import VHDXChangeTracking
import VHDXFormat
import VHDXSets

/// The source of an export held at one change ID while it is read.
///
/// The disk (a `.vhdx`, an `.avhdx` chain's top, or a VHD Set's active leaf chain, the set file
/// locked meanwhile) is opened writable: its writer lock keeps every other writer out, also
/// qemu, so what is read is the disk at one instant. The change ID its next seal will return is
/// reserved and written into the output, and sealed only once the output is complete (`seal`):
/// a failed export seals nothing and spends no history. An output that cannot be published
/// after the seal takes it back (`undoSeal`). A set records the sealed ID as a reference point
/// (what Hyper-V's backup flow leaves: the checkpoint deleted, its reference point kept).
final class ConsistentPoint {
    /// The disk at the target ID, valid while the point holds it (until `release`).
    unowned let image: VHDXFile
    /// The owning reference, dropped by `release`: the disk's handle, and with it its lock, must
    /// be gone before a set records the reference point (pruning the set opens the leaf).
    private var held: VHDXFile?
    let targetID: ChangeID
    let granule: UInt64
    private let set: VHDSet?
    private let tracker: ChangeTracker
    private var sealed = false

    private init(image: VHDXFile, tracker: ChangeTracker, set: VHDSet?) {
        self.image = image
        self.held = image
        self.tracker = tracker
        self.targetID = tracker.reserveNextID()
        self.granule = tracker.header.geometry.granule
        self.set = set
    }

    /// Checks first that `since` (if any) can be answered and that `check` accepts the files the
    /// export reads (its output must not be one of them), so a refused export seals nothing.
    static func take(_ path: String, since: ChangeID?, check: ([String]) throws -> Void) throws -> ConsistentPoint {
        if try VHDSet.looksLikeSet(path) {
            let set = try VHDSet.open(path: path, writable: true)
            let leaf = try set.openLeaf(writable: true)
            guard let tracker = try ChangeTracker.attach(to: leaf) else {
                throw ChangeTrackingError(.notEnabled, "change tracking is not enabled on the set's active leaf (`vhdx track enable` first)", path: path)
            }
            if let since { _ = try set.changes(in: leaf, since: since, maxRanges: 1) }
            try check([path] + leaf.chain.map(\.path))
            return ConsistentPoint(image: leaf, tracker: tracker, set: set)
        }
        let image = try VHDXFile.open(path: path, writable: true)
        let tracker = try ChangeTracking.tracker(of: image)
        if let since { _ = try ChangeTracking.changes(in: image, since: since, maxRanges: 1) }
        try check(image.chain.map(\.path))
        return ConsistentPoint(image: image, tracker: tracker, set: nil)
    }

    /// Every byte range that may differ from `since`, as the disk's tracking answers (never
    /// smaller than the truth; nothing is written to the disk while it is held, so "now" is the
    /// target ID, sealed or not yet).
    func changes(since: ChangeID) throws -> [ChangedRange] {
        if let set { return try set.changes(in: image, since: since).ranges }
        return try ChangeTracking.changes(in: image, since: since).ranges
    }

    /// Seals the target ID: called once the output is complete and flushed, before it is
    /// published. Durable when it returns.
    func seal() throws(VHDXError) {
        guard !sealed else { return }
        let id = try tracker.seal()
        sealed = true
        guard id == targetID else {
            throw VHDXError(.inUse, "the disk sealed \(id), not the reserved \(targetID): something else sealed it meanwhile", path: image.path)
        }
    }

    /// Takes the seal back when the output could not be published after it.
    func undoSeal() {
        guard sealed else { return }
        if (try? tracker.undoSeal(targetID)) != nil { sealed = false }
    }

    /// Ends the hold: closes the disk; a set records the sealed ID as a reference point.
    func release() throws {
        guard held != nil else { return }
        try image.close()
        held = nil
        if let set, sealed { try set.addReferencePoint(targetID) }
    }
}
