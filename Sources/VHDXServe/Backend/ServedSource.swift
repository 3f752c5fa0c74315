/// Opens what `vhdx serve SOURCE` serves: a `.vhdx`, an `.avhdx` chain's top, a `SET.vhds`,
/// or an exported chain, with `--read-only`, `--overlay` or `--checkpoint`.
package enum ServedSource {
    /// `log` receives one line per event worth telling the operator (an ID not offered, and why).
    package static func open(_ path: String, options: ServeSourceOptions,
                             log: @escaping @Sendable (String) -> Void) throws -> any ServedDisk {
        // Replaced by the engine-backed disks (Backend/); until then nothing can be served.
        throw ServeError(.notSupported, "\(path): serving is not built yet")
    }
}
