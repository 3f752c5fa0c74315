/// How `NBD_OPT_LIST_META_CONTEXT` and `NBD_OPT_SET_META_CONTEXT` queries become contexts,
/// given the disk's answer to one query (`ServedDisk.metaContexts(matching:)`).
package enum NBDMetaContextQuery {
    /// LIST: every context any query matches (no query: all of them), each once, in the order
    /// found. A query's namespace with an empty leaf ("base:", "qemu:dirty-bitmap:") is a
    /// wildcard here.
    package static func list(_ queries: [String], lookup: (String) -> [String]) -> [String] {
        var seen = Set<String>()
        var out: [String] = []
        for q in queries.isEmpty ? [""] : queries {
            for name in lookup(q) where seen.insert(name).inserted { out.append(name) }
        }
        return out
    }

    /// SET: only exact names select a context (proto.md: a wildcard SHOULD NOT select, and
    /// "base:" MUST be ignored); queries without a namespace are ignored, never an error.
    package static func select(_ queries: [String], lookup: (String) -> [String]) -> [String] {
        var seen = Set<String>()
        var out: [String] = []
        for q in queries {
            guard let colon = q.firstIndex(of: ":"), colon != q.startIndex, q.index(after: colon) != q.endIndex else { continue }
            guard !q.hasSuffix(":") else { continue }
            if lookup(q).contains(q), seen.insert(q).inserted { out.append(q) }
        }
        return out
    }
}
