import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXFormat
import VHDXSets
import VHDXTestSupport

/// A set in a fresh folder with a byte model of its content and, for every change ID sealed by
/// a checkpoint, the content it sealed: what the tests compare the set and its answers with.
final class SetLab {
    static let granule: UInt64 = 64 << 10
    let dir: String
    let setPath: String
    let size: UInt64
    var model: [UInt8]
    /// The content each checkpoint's change ID sealed.
    var sealed: [ChangeID: [UInt8]] = [:]
    /// IDs whose sealed content is an ancestor state of the current content.
    var lineage: [ChangeID] = []
    /// The lineage as it was when each snapshot was taken (what `apply` returns to).
    var lineageAt: [GUID: [ChangeID]] = [:]
    var rng: SplitMix

    init(size: UInt64 = 16 << 20, seed: UInt64 = 1, name: String = #function) throws {
        dir = Fixtures.tempPath("set-" + name.filter { $0.isLetter })
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        setPath = dir + "/disk.vhds"
        self.size = size
        model = [UInt8](repeating: 0, count: Int(size))
        rng = SplitMix(seed: seed)
        var o = CreateOptions(virtualSize: size)
        o.blockSize = 1 << 20
        try VHDSet.create(path: setPath, options: o)
    }

    /// A copy of the lab: its files in a new folder, the same model and sealed contents.
    init(copying other: SetLab, name: String = "copy") throws {
        dir = Fixtures.tempPath("set-" + name.filter { $0.isLetter })
        try FileManager.default.copyItem(atPath: other.dir, toPath: dir)
        setPath = dir + "/disk.vhds"
        size = other.size
        model = other.model
        sealed = other.sealed
        lineage = other.lineage
        lineageAt = other.lineageAt
        rng = other.rng
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    func open(writable: Bool = false) throws -> VHDSet { try VHDSet.open(path: setPath, writable: writable) }

    /// Random bytes written through the set (tracked), granule-aligned, into the model too.
    @discardableResult
    func write(granules: Int, at granuleIndex: Int) throws -> Range<Int> {
        let start = granuleIndex * Int(SetLab.granule), count = granules * Int(SetLab.granule)
        let bytes = rng.bytes(count)
        let top = try open(writable: true).openLeaf(writable: true)
        try ChangeTracker.attach(to: top)
        try top.write(bytes, at: UInt64(start))
        try top.close()
        model.replaceSubrange(start..<start + count, with: bytes)
        return start..<start + count
    }

    func checkpoint() throws -> SnapshotEntry {
        let e = try open(writable: true).checkpoint()
        let id = try #require(e.changeID)
        sealed[id] = model
        lineage.append(id)
        lineageAt[e.id] = lineage
        return e
    }

    /// `apply` in the set and in the model (the old leaf's content sealed when it is kept).
    func apply(_ s: SnapshotEntry, discard: Bool = false) throws {
        let kept = try open(writable: true).apply(s.id, discard: discard)
        if let kept, let id = kept.changeID {
            sealed[id] = model
            lineageAt[kept.id] = lineage + [id]
        }
        let id = try #require(s.changeID)
        model = try #require(sealed[id])
        lineage = try #require(lineageAt[s.id])
    }

    /// The set's content read through the library.
    func content() throws -> [UInt8] {
        try open().openLeaf().read(at: 0, count: Int(size))
    }

    static func granules(_ ranges: [ChangedRange]) -> Set<UInt64> {
        var out = Set<UInt64>()
        for r in ranges where r.length > 0 {
            for g in (r.offset / granule)...((r.offset + r.length - 1) / granule) { out.insert(g) }
        }
        return out
    }

    static func differing(_ a: [UInt8], _ b: [UInt8]) -> Set<UInt64> {
        var out = Set<UInt64>()
        let g = Int(granule)
        a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in
                for i in stride(from: 0, to: a.count, by: g) where memcmp(x.baseAddress! + i, y.baseAddress! + i, g) != 0 { out.insert(UInt64(i / g)) }
            }
        }
        return out
    }

    /// Every sealed ID: an answer covers what changed since it (equals it when exact); IDs in
    /// the lineage that `mustAnswer` names must be answered. Returns the IDs answered.
    /// `exactMeansEqual: false` where a whole-disk change was recorded that the tracker counts
    /// as written (a relink of a modified file: "every byte may differ", not "every byte did").
    @discardableResult
    func verifyChanges(mustAnswer: Set<ChangeID>, _ context: String, exactMeansEqual: Bool = true) throws -> Set<ChangeID> {
        let set = try open()
        var answered = Set<ChangeID>()
        for (id, then) in sealed {
            let truth = SetLab.differing(then, model)
            do {
                let a = try set.changes(since: id)
                answered.insert(id)
                let got = SetLab.granules(a.ranges)
                #expect(truth.isSubset(of: got), "\(context): \(id) misses granules \(truth.subtracting(got).sorted().prefix(8))")
                if a.exact && exactMeansEqual { #expect(got == truth, "\(context): \(id) exact answer over-reports \(got.subtracting(truth).sorted().prefix(8))") }
            } catch let e as ChangeTrackingError where e.reason != .engine {
                #expect(!mustAnswer.contains(id), "\(context): \(id) not answered: \(e)")
            }
        }
        return answered
    }

    /// All backing files the set names, absolute.
    func backingFiles() throws -> [String] {
        let s = try open()
        return s.record.referencedPaths.map { s.absolute($0) }
    }
}
