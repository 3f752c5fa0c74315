import ArgumentParser

/// What `convert` writes, by DST's name: `.vhdx`/`.avhdx` a VHDX, `-` raw bytes to stdout, the
/// names of other virtual-disk formats refused (writing raw bytes under `.qcow2` would mislead
/// every tool that trusts the name), anything else (`.raw`, `.img`, no extension…) a raw image.
enum OutputFormat: Equatable {
    case vhdx, raw, stdout

    /// Extensions of formats this tool does not write, with their names.
    static let refused: [String: String] = [
        "vhd": "VHD", "vpc": "VHD", "vhds": "VHD Set", "qcow": "qcow", "qcow2": "qcow2", "qed": "QED",
        "vmdk": "VMDK", "vdi": "VDI", "hdd": "Parallels", "hds": "Parallels", "dmg": "DMG",
    ]

    init(destination: String) throws {
        if destination == "-" { self = .stdout; return }
        let ext = OutputFormat.fileExtension(destination)
        if ext == "vhdx" || ext == "avhdx" { self = .vhdx; return }
        if ext == "vhds" {  // one rule: .vhds names a set everywhere (OutputRule)
            throw ValidationError("\(destination): a .vhds name is a VHD Set, which convert does not make: `vhdx set create SET.vhds --from DISK.vhdx` makes a set of a converted disk")
        }
        if let format = OutputFormat.refused[ext] {
            throw ValidationError("\(destination): .\(ext) (\(format)) output is not supported; vhdx writes VHDX (DST ending in .vhdx or .avhdx) or raw (any other name, e.g. .raw or .img)")
        }
        self = .raw
    }

    /// The lowercased extension of a path's file name, "" without one.
    static func fileExtension(_ path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return name.contains(".") ? String(name.split(separator: ".").last!).lowercased() : ""
    }

    /// Refuses a source named as another format: read as raw, a qcow2 or VMDK file would
    /// "convert" into its container bytes, not its disk.
    static func checkSource(_ source: String) throws {
        let ext = fileExtension(source)
        if ext != "vhds", let format = refused[ext] {  // a set is read through its active leaf
            throw ValidationError("\(source): .\(ext) (\(format)) input is not supported; SRC is a VHDX, a VHD Set or a raw disk image")
        }
    }
}
