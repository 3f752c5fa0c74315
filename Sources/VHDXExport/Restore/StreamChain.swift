import VHDX
import VHDXChangeTracking

/// The order rules of a full export and its incrementals: one disk, each incremental's base
/// the change ID the previous one reached (and, when it names one, that export's stream).
enum StreamChain {
    /// Why `next` cannot follow `previous` (an image or stream holding `previous`), or nil.
    static func problem(_ next: StreamHeader, after previous: StreamHeader, name: String) -> ExportError? {
        if next.sourceDiskID != previous.sourceDiskID {
            return ExportError(.otherDisk, "this export is of the disk {\(next.sourceDiskID)}, its base is of {\(previous.sourceDiskID)}", path: name)
        }
        guard let base = next.baseID else {
            // The exports do not follow each other (README: exit 3), like an incremental out of order.
            return ExportError(.wrongBase, "a full export cannot follow another export: it starts a restore", path: name)
        }
        if next.targetID == previous.targetID || next.streamID == previous.streamID || previous.isConsolidated && next.streamID == previous.standsFor {
            return ExportError(.alreadyApplied, "this incremental (to \(next.targetID)) is what the base already holds", path: name)
        }
        if base != previous.targetID {
            return ExportError(.wrongBase, "this incremental goes from \(base), but its base holds \(previous.targetID) (out of order, or another export's incremental)", path: name)
        }
        // A consolidated full holds exactly what the export it stands for holds (same change ID,
        // same bytes, every record of its chain checked when it was made): an incremental made on
        // that export follows it. Any other named export is still another base.
        if next.baseStreamID != .zero, next.baseStreamID != previous.streamID, next.baseStreamID != previous.standsFor {
            let also = previous.isConsolidated ? " (a consolidation standing for {\(previous.standsFor)})" : ""
            return ExportError(.wrongBase, "this incremental was made on the export {\(next.baseStreamID)}, its base is the export {\(previous.streamID)}\(also)", path: name)
        }
        return nil
    }

    /// Opens every stream and checks the order from their headers alone, before anything is read.
    static func open(_ paths: [String]) throws(ExportError) -> [StreamReader] {
        guard !paths.isEmpty else { throw ExportError(.invalid, "no export given") }
        if paths.filter({ $0 == "-" }).count > 1 { throw ExportError(.invalid, "only one input can be standard input") }
        var readers: [StreamReader] = []
        for p in paths {
            let r = try StreamReader(path: p)
            if let last = readers.last {
                if let e = problem(r.header, after: last.header, name: p) { throw e }
            } else if r.header.isIncremental {
                throw ExportError(.wrongBase, "the first export must be a full one; this is an incremental from \(r.header.baseID!)", path: p)
            }
            readers.append(r)
        }
        return readers
    }
}
