import VHDX

/// An exported chain (`full.vhdx ← inc1.avhdx ← …`) checked layer by layer: every file an
/// export of ours, unwritten since, each incremental on the export below it. The bottom is a
/// whole disk, whatever export it holds (a full export, or a restored image with incrementals
/// applied).
enum ChainOrigin {
    /// The export the chain's top holds.
    static func verify(_ top: VHDXFile) throws -> StreamHeader {
        var above: (StreamHeader, String)?
        var holds: StreamHeader?
        for layer in top.chain {
            guard let origin = try OriginStore.read(layer) else {
                throw ExportError(.notAnExport, "this VHDX was not made by `vhdx export` or `vhdx restore` (it has no export origin record)", path: layer.path)
            }
            try OriginStore.check(origin, of: layer)
            if let (h, path) = above, let e = StreamChain.problem(h, after: origin.holds, name: path) { throw e }
            if holds == nil { holds = origin.holds }
            above = (origin.holds, layer.path)
        }
        return holds!
    }
}
