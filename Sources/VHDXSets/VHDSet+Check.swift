import VHDX
import VHDXFormat

/// One thing `check` found about a set (its file, its links, its backing files).
public struct SetFinding: Sendable, CustomStringConvertible {
    public enum Severity: String, Sendable { case corruption, note }
    public var severity: Severity
    public var message: String
    public var path: String?
    public var description: String { (path.map { "\($0): " } ?? "") + message }
}

extension VHDSet {
    /// Everything about the set but the leaf chain's own structure (the CLI checks that with
    /// the engine's chain check): the other copy of the set file, every snapshot's file
    /// (present, unmodified; off the leaf's chain, its structure too), the leaf's chain
    /// matching the set, what an interrupted operation left. A file that cannot be read (an
    /// I/O error) is not a finding: the check could not run, and that error is thrown.
    public func check() throws(VHDXError) -> [SetFinding] {
        var out: [SetFinding] = []
        if let c = copyProblem { out.append(SetFinding(severity: .corruption, message: c, path: path)) }
        let onLeafChain = Set(record.leafAncestry())
        for e in record.snapshots {
            if let p = problem(with: e) {
                if p.code == .io { throw p }
                out.append(SetFinding(severity: .corruption, message: p.message, path: p.path))
            } else if e.hasFile && !onLeafChain.contains(e.id) {
                // Files of other branches: their own structure (the leaf's chain is the
                // caller's to check, with the engine's chain check).
                do {
                    let report = try Checker.check(path: absolute(e.path))
                    for f in report.findings where f.kind == .corruption {
                        out.append(SetFinding(severity: .corruption, message: "snapshot {\(e.id)}'s file: \(f.message)", path: absolute(e.path)))
                    }
                } catch {
                    if error.code == .io { throw error }
                    out.append(SetFinding(severity: .corruption, message: "snapshot {\(e.id)}'s file cannot be checked: \(error.message)", path: error.path))
                }
            }
        }
        do { _ = try openLeaf() } catch {
            if error.code == .io { throw error }
            out.append(SetFinding(severity: .corruption, message: "the active leaf's chain cannot be opened: \(error.message)", path: error.path))
        }
        if let p = record.pending {
            out.append(SetFinding(severity: .note, message: "an interrupted \(p.kind) is pending; the next command that writes to the set completes it", path: path))
        }
        if !record.unlinkQueue.isEmpty {
            out.append(SetFinding(severity: .note, message: "\(record.unlinkQueue.count) unused file(s) wait to be deleted by the next command that writes to the set", path: path))
        }
        return out
    }
}

extension PendingOperation.Kind: CustomStringConvertible {
    public var description: String {
        switch self {
        case .checkpoint: "checkpoint"
        case .apply: "apply"
        case .delete: "delete"
        case .relink: "relink"
        }
    }
}
