import VHDXFormat

extension Checker {
    /// Checks a differencing image's whole chain: every layer's structures, and each link
    /// (found, DataWriteGuid matching, same sector size). Findings of a parent name its file.
    /// A parent that cannot be found is an error (the check cannot run), a parent whose
    /// DataWriteGuid matches neither linkage is corruption of the chain.
    public static func checkChain(path: String, parents: ParentOptions) throws(VHDXError) -> CheckReport {
        var report = try check(path: path)
        let top: VHDXFile
        do { top = try VHDXFile.openChain(path: path, parents: parents) } catch {
            // The image's own damage is the answer (corrupt, exit 2), not "the check could not
            // run": its parents cannot be reached through it.
            if !report.complete || (error.code == .corrupt && report.corruptions > 0) {
                report.findings.append(Finding(.notice, .parentsNotChecked, "parent chain", "parents not checked: \(error.message)"))
                return report
            }
            guard error.code == .parentMismatch || error.code == .cyclicChain else { throw error }
            report.findings.append(Finding(.corruption, .brokenChain, "parent chain", "\(error.path.map { "\($0): " } ?? "")\(error.message)"))
            return report
        }
        for (child, parent) in zip(top.chain, top.chain.dropFirst()) {
            if let link = child.parentLink {
                switch link.match {
                case .parentLinkage2:
                    report.findings.append(Finding(.notice, .unfinishedMerge, "parent chain", "\(child.storage.name) links to \(link.path) by parent_linkage2: a merge into it was started and not completed; the chain still reads correctly, and running the merge again completes it"))
                case .ignored:
                    report.findings.append(Finding(.notice, .parentNotVerified, "parent chain", "\(child.storage.name): the DataWriteGuid of its parent \(link.path) was not checked (a mismatch was accepted)"))
                case .parentLinkage: break
                }
            }
            let sub = try check(path: parent.storage.name)
            report.findings += sub.findings.map { f in
                var g = f
                g.structure = "\(parent.storage.name): \(f.structure)"
                return g
            }
            report.leakedBytes += sub.leakedBytes
            report.suppressed += sub.suppressed
            report.complete = report.complete && sub.complete
        }
        return report
    }
}
