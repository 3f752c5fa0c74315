import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXExport
import VHDXTestSupport

/// An export that fails seals nothing: the disk's change IDs and history are as before, so no
/// number of failures forces a full backup (the export seals only once its output is complete,
/// and takes the seal back when the output cannot be published after it).
@Suite(.serialized) struct FailedExportTests {
    func retained(_ lab: ExportLab) throws -> [ChangeID] {
        let image = try VHDXFile.open(path: lab.disk)
        return try ChangeTracking.tracker(of: image).retainedIDs
    }

    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    @Test("refused before reading (missing folder, output over its own input, stdout that cannot be written): nothing sealed, 20 times over")
    func refusedExportsSealNothing() throws {
        let lab = try ExportLab(size: 8 << 20)
        try lab.write(1 << 20, at: 0)
        try lab.export("full.vxs")
        try lab.write(4096, at: 3 << 20)
        let before = try retained(lab)
        for _ in 0..<20 {
            let missing = try vhdx("export '\(lab.disk)' '\(lab.dir)/no/such/folder/inc.vxs' --base '\(lab.path("full.vxs"))'")
            #expect(missing.status == 1 && missing.stderr.contains("does not exist"), "\(missing.stderr)")
            let over = try vhdx("export '\(lab.disk)' '\(lab.disk)' --force")
            #expect(over.status == 1 && over.stderr.contains("own inputs"), "exit \(over.status): \(over.stderr)")
            let full = try vhdx("export '\(lab.disk)' - --base '\(lab.path("full.vxs"))' > /dev/full")
            #expect(full.status == 1, "\(full.stderr)")
        }
        #expect(try retained(lab) == before)
        // The base still answers: the incremental restores to the disk's content.
        try lab.export("inc.vxs", base: "full.vxs")
        try Restorer.restore(to: lab.path("r.raw"), from: [lab.path("full.vxs"), lab.path("inc.vxs")])
        #expect(ExportLab.fileBytes(lab.path("r.raw")) == lab.model)
    }

    @Test("an output whose name is taken while the export runs: the seal is taken back, in every form", arguments: ["inc.vxs", "inc.avhdx", "full2.vhdx"])
    func unpublishedOutputTakesTheSealBack(_ name: String) throws {
        let lab = try ExportLab(size: 8 << 20)
        try lab.write(2 << 20, at: 0)
        try lab.export("full.vhdx")
        try lab.write(1 << 20, at: 4 << 20)
        let before = try retained(lab)
        let out = lab.path(name)
        var took = false
        #expect(throws: (any Error).self) {
            try Exporter.export(lab.disk, to: out, options: ExportOptions(base: name == "full2.vhdx" ? nil : lab.path("full.vhdx"))) { _, _ in
                if !took { took = FileManager.default.createFile(atPath: out, contents: Data("someone else's".utf8)) }
            }
        }
        #expect(took)
        #expect(String(decoding: ExportLab.fileBytes(out), as: UTF8.self) == "someone else's")
        #expect(try retained(lab) == before, "the failed export's seal was not taken back")
        try FileManager.default.removeItem(atPath: out)
        try lab.export(name, base: name == "full2.vhdx" ? nil : "full.vhdx")
        if name == "inc.vxs" {
            // A stream is checked by applying it onto the full export it was made on.
            try Applier.apply(out, to: lab.path("full.vhdx"))
            #expect(try ExportLab.content(lab.path("full.vhdx")) == lab.model)
        } else {
            #expect(try ExportLab.content(out) == lab.model)
        }
    }

    @Test("an incremental from the oldest retained ID works: the answer is taken before the seal that drops it")
    func exportFromTheOldestRetainedID() throws {
        let lab = try ExportLab(size: 8 << 20)
        try lab.change { image in
            try ChangeTracking.disable(image)
            try ChangeTracking.enable(image, history: 2)
        }
        try lab.write(1 << 20, at: 0)
        let full = try lab.export("full.vxs").header.targetID
        for i in 1...2 {
            try lab.write(4096, at: i << 20)
            try lab.change { image in _ = try ChangeTracking.tracker(of: image).seal() }
        }
        let ids = try retained(lab)
        #expect(ids.count == 3)
        #expect(ids.first == full, "the full export's ID is the oldest retained one")
        try lab.export("inc.vxs", base: "full.vxs")
        try Restorer.restore(to: lab.path("r.raw"), from: [lab.path("full.vxs"), lab.path("inc.vxs")])
        #expect(ExportLab.fileBytes(lab.path("r.raw")) == lab.model)
    }
}
