import Foundation
import Testing
import VHDX
import VHDXExport
import VHDXFormat
import VHDXTestSupport

/// An export stream's records as laid out in its bytes, found by walking the 64-byte headers
/// (each followed by its body), and the edits the corruption tests make to them: a flipped
/// byte, records swapped, duplicated, dropped or spliced, with the CRCs re-sealed when the
/// test wants only the checks beyond the CRCs to be able to tell.
struct StreamLayout {
    enum Kind: UInt8 { case header = 1, data = 2, zero = 3, trailer = 4 }

    struct Record: CustomStringConvertible {
        var number: Int
        var start: Int
        var kind: Kind
        var flags: UInt8
        var bodyLength: Int
        var offset: UInt64
        var length: UInt64
        var bodyStart: Int { start + 64 }
        var end: Int { start + 64 + bodyLength }
        var isDeflated: Bool { flags & 1 != 0 }
        var description: String {
            "record \(number) (\(kind)\(kind == .data ? isDeflated ? ", deflated" : ", stored" : ""), stream bytes \(start)..<\(end))"
        }
    }

    var records: [Record] = []

    init(_ s: [UInt8]) throws {
        var at = 0
        while at < s.count {
            guard at + 64 <= s.count, Array(s[at..<at + 8]) == Array("vhdxexp1".utf8), let kind = Kind(rawValue: s[at + 32]) else {
                throw TestFailure("no record header at stream offset \(at)")
            }
            let r = Record(number: records.count, start: at, kind: kind, flags: s[at + 33], bodyLength: Int(Surgery.le32(s, at + 36)),
                           offset: Surgery.le64(s, at + 40), length: Surgery.le64(s, at + 48))
            records.append(r)
            at = r.end
        }
        guard at == s.count, records.first?.kind == .header, records.last?.kind == .trailer else {
            throw TestFailure("not a whole stream: \(records.count) records, \(at) of \(s.count) bytes")
        }
    }

    var data: [Record] { records.filter { $0.kind == .data } }
    var zero: [Record] { records.filter { $0.kind == .zero } }
}

enum Surgery {
    static func le32(_ b: [UInt8], _ i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[i + $1]) << (8 * $1) } }
    static func le64(_ b: [UInt8], _ i: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[i + $1]) << (8 * $1) } }
    static func put32(_ b: inout [UInt8], _ i: Int, _ v: UInt32) { for k in 0..<4 { b[i + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) } }
    static func put64(_ b: inout [UInt8], _ i: Int, _ v: UInt64) { for k in 0..<8 { b[i + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) } }

    /// Recomputes the header CRC-32C (bytes 60..<64) of the record at `start`.
    static func sealHeader(_ s: inout [UInt8], at start: Int) {
        put32(&s, start + 60, CRC32C.checksum(s[start..<start + 60]))
    }

    /// Recomputes a record's body CRC-32C (header bytes 56..<60), then its header CRC.
    static func sealBody(_ s: inout [UInt8], _ r: StreamLayout.Record) {
        put32(&s, r.start + 56, CRC32C.checksum(s[r.bodyStart..<r.end]))
        sealHeader(&s, at: r.start)
    }

    /// Flips the byte at `p` and changes the 4 bytes at `q` so that the CRC-32C of `s[range]`
    /// stays what it was (both positions inside `range`, 4 bytes apart at least): a CRC
    /// collision, which only a stronger check (a SHA-256) can tell from the original. CRC-32C
    /// is affine, and any 32 consecutive bits can cancel any change: the bits of `q..<q+4` that
    /// do are found by elimination over GF(2).
    static func flipKeepingCRC(_ s: inout [UInt8], _ range: Range<Int>, flip p: Int, fix q: Int) {
        // The change a delta makes to the CRC depends only on the bytes from its first one on.
        let start = min(p, q), zeros = [UInt8](repeating: 0, count: range.upperBound - start)
        let base = CRC32C.checksum(zeros)
        func effect(_ at: Int, _ bits: UInt8) -> UInt32 {
            var z = zeros
            z[at - start] = bits
            return CRC32C.checksum(z) ^ base
        }
        // pivot[b]: an effect whose highest bit is b, and which of q's 32 bits make it.
        var pivot = [(effect: UInt32, bits: UInt32)?](repeating: nil, count: 32)
        for bit in 0..<32 {
            var e = effect(q + bit / 8, 1 << (bit % 8)), m = UInt32(1) << bit
            for b in stride(from: 31, through: 0, by: -1) where e >> b & 1 == 1 {
                guard let (pe, pm) = pivot[b] else { pivot[b] = (e, m); break }
                e ^= pe
                m ^= pm
            }
        }
        var t = effect(p, 1), mask: UInt32 = 0
        for b in stride(from: 31, through: 0, by: -1) where t >> b & 1 == 1 {
            let (pe, pm) = pivot[b]!
            t ^= pe
            mask ^= pm
        }
        s[p] ^= 1
        for bit in 0..<32 where mask >> bit & 1 == 1 { s[q + bit / 8] ^= 1 << (bit % 8) }
    }

    /// Each record's bytes (header and body).
    static func split(_ s: [UInt8]) throws -> [[UInt8]] {
        try StreamLayout(s).records.map { Array(s[$0.start..<$0.end]) }
    }

    /// Records joined into a stream, numbered 0, 1, … with their header CRCs re-sealed: what
    /// is left wrong is only what the order, the digests and the trailer can tell.
    static func join(_ records: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, var r) in records.enumerated() {
            put64(&r, 24, UInt64(i))
            sealHeader(&r, at: 0)
            out += r
        }
        return out
    }

    /// `record` (from another stream) given `streamID`'s bytes and re-sealed.
    static func adopt(_ record: [UInt8], streamID: ArraySlice<UInt8>) -> [UInt8] {
        var r = record
        r.replaceSubrange(8..<24, with: streamID)
        sealHeader(&r, at: 0)
        return r
    }
}

/// Files of a test folder, compared whole.
func fileData(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

/// Runs `body`, which must fail with an `ExportError` of one of `reasons`; returns the error.
@discardableResult
func expectRefusal(_ reasons: [ExportError.Reason], _ what: @autoclosure () -> String,
                   sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> ExportError? {
    do {
        try body()
    } catch let e as ExportError {
        #expect(reasons.contains(e.reason), "\(what()): expected \(reasons.map(\.rawValue)), got \(e)", sourceLocation: sourceLocation)
        return e
    } catch {
        Issue.record("\(what()): expected \(reasons.map(\.rawValue)), got a \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
    Issue.record("\(what()): accepted, expected \(reasons.map(\.rawValue))", sourceLocation: sourceLocation)
    return nil
}

/// A tracked 8 MiB disk (64 KiB granule) with a full export and two incrementals on it, each
/// holding stored (random) and deflated (patterned) data records and zero records, a byte
/// model of what each export holds, and exports of a second disk. Built once per test process
/// (its exports take about a second in a debug build) and only read after that: each test
/// works in a `CorruptionCase` folder of its own.
final class CorruptionScenario: @unchecked Sendable {
    static let shared = Result { try CorruptionScenario() }

    let lab: ExportLab
    let other: ExportLab
    /// The disk at the full export, at inc1 and at inc2.
    var contents: [[UInt8]] = []
    let full: [UInt8], inc1: [UInt8], inc2: [UInt8]

    private init() throws {
        lab = try ExportLab(size: 8 << 20, granule: 64 << 10, seed: 7, name: "corruption")
        try lab.write(200 << 10, at: 64 << 10)
        try lab.export("full0")
        try lab.writePattern((1 << 20) + (128 << 10), at: 2 << 20)
        try lab.write(100 << 10, at: (5 << 20) + 3000)
        // Two 64 KiB data records of equal length (for body swaps).
        try lab.write(64 << 10, at: 7 << 20)
        try lab.write(64 << 10, at: (7 << 20) + (512 << 10))
        try lab.export("full")
        contents.append(lab.model)

        try lab.write(70 << 10, at: 192 << 10)
        try lab.zero(128 << 10, at: 2 << 20)
        try lab.writePattern(256 << 10, at: 6 << 20, byte: 0x33)
        try lab.write(64 << 10, at: (7 << 20) + (256 << 10))
        try lab.export("inc1", base: "full")
        contents.append(lab.model)

        try lab.write(64 << 10, at: 4 << 20)
        try lab.zero(64 << 10, at: 5 << 20)
        try lab.writePattern(512 << 10, at: (2 << 20) + (512 << 10), byte: 0x77)
        try lab.export("inc2", base: "inc1")
        contents.append(lab.model)

        try lab.write(32 << 10, at: 100 << 10)
        try lab.export("fullB")
        try lab.export("incB", base: "full")

        full = ExportLab.fileBytes(lab.path("full"))
        inc1 = ExportLab.fileBytes(lab.path("inc1"))
        inc2 = ExportLab.fileBytes(lab.path("inc2"))

        other = try ExportLab(granule: 64 << 10, seed: 99, name: "corruptionother")
        try other.write(64 << 10, at: 1 << 20)
        try other.export("full")
        try other.write(64 << 10, at: 2 << 20)
        try other.export("inc", base: "full")

        // The process keeps the scenario to its end, so its folders go then.
        atexit {
            guard case .success(let s) = CorruptionScenario.shared else { return }
            try? FileManager.default.removeItem(atPath: s.lab.dir)
            try? FileManager.default.removeItem(atPath: s.other.dir)
        }
    }
}

/// One test's view of the shared scenario: its exports (read only) and a folder of the test's
/// own for damaged copies and restored images, removed with it.
final class CorruptionCase {
    let scenario: CorruptionScenario
    let dir: String

    init(name: String = #function) throws {
        scenario = try CorruptionScenario.shared.get()
        dir = Fixtures.tempPath("corrupt-" + name.filter { $0.isLetter || $0.isNumber })
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    var full: [UInt8] { scenario.full }
    var inc1: [UInt8] { scenario.inc1 }
    var inc2: [UInt8] { scenario.inc2 }
    var contents: [[UInt8]] { scenario.contents }

    var fullPath: String { scenario.lab.path("full") }
    var inc1Path: String { scenario.lab.path("inc1") }
    var inc2Path: String { scenario.lab.path("inc2") }
    /// A full export older than `full`.
    var full0Path: String { scenario.lab.path("full0") }
    /// A full export taken after inc2 (records at the same places as `full`'s, other bytes).
    var fullBPath: String { scenario.lab.path("fullB") }
    /// An incremental on `full` taken after inc2: another chain than full ← inc1 ← inc2.
    var incBPath: String { scenario.lab.path("incB") }
    /// The tracked disk itself: a VHDX that is no export.
    var sourceDisk: String { scenario.lab.disk }
    /// Another disk's full export and an incremental on it.
    var otherFullPath: String { scenario.other.path("full") }
    var otherIncPath: String { scenario.other.path("inc") }

    func path(_ name: String) -> String { dir + "/" + name }

    /// Files in the test's folder (a temporary left behind would show here).
    func listing() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: dir).sorted() }

    /// A VHDX restored from `streams`, in the test's folder.
    func restored(_ name: String, _ streams: [String]) throws -> String {
        let out = path(name)
        _ = try Restorer.restore(to: out, from: streams)
        return out
    }

    /// `bytes` written to a file of the test's folder.
    func save(_ bytes: [UInt8], as name: String) throws -> String {
        let p = path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }
}
