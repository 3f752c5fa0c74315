import Foundation
import Testing
import VHDX
import VHDXExport
import VHDXTestSupport

/// What others read of our exports: the exported chain `full.vhdx ← inc1.avhdx ← inc2.avhdx`
/// through libvhdi and 7-Zip, the full and restored images through qemu-img.
@Suite struct ExportInteropTests {
    @Test("exported chains read as the source did in libvhdi and 7-Zip; restored images pass qemu-img check and compare")
    func oracles() throws {
        try Shell.require("qemu-img"); try Shell.require("7zz"); try Shell.require("/usr/bin/python3")
        let lab = try ExportLab(size: 16 << 20)
        try lab.write(5 << 20, at: 1 << 20)
        try lab.writePattern(2 << 20, at: 9 << 20)
        try lab.export("full.vhdx")
        try lab.export("full.vxs")
        var wants: [String] = [sha256Hex(lab.model)]
        try lab.write(300_000, at: 2 << 20)
        try lab.zero(1 << 20, at: 9 << 20)
        try lab.export("inc1.avhdx", base: "full.vhdx")
        try lab.export("inc1.vxs", base: "full.vxs")
        wants.append(sha256Hex(lab.model))
        try lab.write(4096, at: 15 << 20)
        try lab.export("inc2.avhdx", base: "inc1.avhdx")
        try lab.export("inc2.vxs", base: "inc1.vxs")
        wants.append(sha256Hex(lab.model))

        let layers = ["full.vhdx", "inc1.avhdx", "inc2.avhdx"]
        for k in layers.indices {
            let lib = try libvhdiSHA256(layers[0...k].reversed().map(lab.path))
            #expect(lib.stdout.hasPrefix(wants[k]), "\(layers[k]): libvhdi reads the chain differently: \(lib.stdout)\(lib.stderr)")
            let seven = try Shell.run("set -o pipefail; cd '\(lab.dir)' && 7zz x -tvhdx -so '\(layers[k])' 2>/dev/null | \(Shell.sha256Command) -", allowFailure: true)
            #expect(seven.stdout.hasPrefix(wants[k]), "\(layers[k]): 7-Zip reads the chain differently: \(seven.stdout)")
        }
        try Restorer.restore(to: lab.path("restored.vhdx"), from: ["full.vxs", "inc1.vxs", "inc2.vxs"].map(lab.path))
        try Restorer.restore(to: lab.path("fixed.vhdx"), from: ["full.vxs", "inc1.vxs", "inc2.vxs"].map(lab.path), fixed: true)
        for image in ["full.vhdx", "restored.vhdx", "fixed.vhdx"] {
            let check = try Shell.run("qemu-img check -f vhdx '\(lab.path(image))'", allowFailure: true)
            #expect(check.status == 0, "\(image): \(check.stdout)\(check.stderr)")
        }
        for image in ["restored.vhdx", "fixed.vhdx"] {
            let compare = try Shell.run("qemu-img compare -f vhdx -F vhdx '\(lab.path(image))' '\(lab.disk)'", allowFailure: true)
            #expect(compare.status == 0, "\(image): \(compare.stdout)\(compare.stderr)")
        }
        let raw = try Shell.run("set -o pipefail; qemu-img convert -f vhdx -O raw '\(lab.path("full.vhdx"))' '\(lab.path("full.raw"))' && \(Shell.sha256Command) '\(lab.path("full.raw"))'", allowFailure: true)
        #expect(raw.stdout.hasPrefix(wants[0]), "qemu-img reads the full export differently")
    }
}
