import Foundation
import Testing
import VHDX
import VHDXFormat
import VHDXSets
import VHDXTestSupport

/// A set's files stay in its folder tree on disk: a folder (or a folder component, or a backing
/// file) that is a symbolic link leading elsewhere is refused with a clear error before
/// anything is created, opened or deleted through it; links that stay inside are fine.
@Suite("VHD Set folders that are symbolic links", .serialized)
struct SetSymlinkTests {
    final class Dirs {
        let root: String, outside: String
        init(_ name: String = #function) throws {
            root = Fixtures.tempPath("symset-" + name.filter { $0.isLetter })
            outside = Fixtures.tempPath("symout-" + name.filter { $0.isLetter })
            for d in [root, outside] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        }
        deinit { for d in [root, outside] { try? FileManager.default.removeItem(atPath: d) } }
        var set: String { root + "/s.vhds" }
        func outsideFiles() throws -> [String] {
            try FileManager.default.subpathsOfDirectory(atPath: outside).filter { $0.hasSuffix(".avhdx") || $0.hasPrefix(".") }
        }
    }

    static var options: CreateOptions {
        var o = CreateOptions(virtualSize: 4 << 20)
        o.blockSize = 1 << 20
        return o
    }

    static func refusedOutside(_ e: any Error) -> Bool {
        guard let v = e as? VHDXError else { return false }
        return v.code == .invalidArgument && v.message.contains("outside the set's folder")
    }

    @Test("a default folder (or a component of it) that is a symbolic link out of the set's folder: create refused, nothing made there")
    func createThroughLink() throws {
        let d = try Dirs()
        try FileManager.default.createSymbolicLink(atPath: d.root + "/disks", withDestinationPath: d.outside)
        for folder in ["disks", "disks/vm1"] {
            #expect { try VHDSet.create(path: d.set, options: SetSymlinkTests.options, folder: folder) } throws: { SetSymlinkTests.refusedOutside($0) }
            #expect(!FileManager.default.fileExists(atPath: d.set))
            #expect(try d.outsideFiles().isEmpty && (try FileManager.default.contentsOfDirectory(atPath: d.outside)).isEmpty, "\(folder): made outside")
        }
        // A link that stays inside the set's folder is fine.
        try FileManager.default.createDirectory(atPath: d.root + "/real", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: d.root + "/inside", withDestinationPath: d.root + "/real")
        try VHDSet.create(path: d.set, options: SetSymlinkTests.options, folder: "inside")
        _ = try VHDSet.open(path: d.set, writable: true).checkpoint()
        #expect(try FileManager.default.contentsOfDirectory(atPath: d.root + "/real").filter { $0.hasSuffix(".avhdx") }.count == 2)
    }

    @Test("the default folder, or a folder above it, replaced by a symbolic link out of the set's folder: checkpoint refused, nothing written or made")
    func checkpointThroughLink() throws {
        for (folder, linked) in [("disks", "disks"), ("a/b", "a")] {
            let d = try Dirs("checkpoint" + linked)
            try VHDSet.create(path: d.set, options: SetSymlinkTests.options, folder: folder)
            // The folder moved out of the tree and a link left in its place.
            try FileManager.default.moveItem(atPath: d.root + "/" + linked, toPath: d.outside + "/" + linked)
            try FileManager.default.createSymbolicLink(atPath: d.root + "/" + linked, withDestinationPath: d.outside + "/" + linked)
            let before = try Data(contentsOf: URL(fileURLWithPath: d.set))
            let filesBefore = try d.outsideFiles()
            #expect { try VHDSet.open(path: d.set, writable: true).checkpoint() } throws: { SetSymlinkTests.refusedOutside($0) }
            #expect { try VHDSet.open(path: d.set).openLeaf() } throws: { SetSymlinkTests.refusedOutside($0) }
            #expect(try Data(contentsOf: URL(fileURLWithPath: d.set)) == before, "\(folder): the set file changed")
            #expect(try d.outsideFiles() == filesBefore, "\(folder): a file was made outside")
        }
    }

    @Test("a backing file that is a symbolic link out of the set's folder: open and check refuse it; relink to one is refused, to a link inside takes the file it leads to")
    func backingFileLink() throws {
        let d = try Dirs()
        try VHDSet.create(path: d.set, options: SetSymlinkTests.options)
        let snap = try VHDSet.open(path: d.set, writable: true).checkpoint()
        let frozen = try VHDSet.open(path: d.set).absolute(snap.path)
        // The frozen file moved out, a link left where the set names it.
        try FileManager.default.moveItem(atPath: frozen, toPath: d.outside + "/f.avhdx")
        try FileManager.default.createSymbolicLink(atPath: frozen, withDestinationPath: d.outside + "/f.avhdx")
        #expect { try VHDSet.open(path: d.set).openLeaf() } throws: { SetSymlinkTests.refusedOutside($0) }
        let findings = try VHDSet.open(path: d.set).check()
        #expect(findings.contains { $0.severity == .corruption && $0.message.contains("outside the set's folder") }, "\(findings)")
        #expect { try VHDSet.open(path: d.set, writable: true).checkpoint() } throws: { SetSymlinkTests.refusedOutside($0) }

        // Relink to a link leading out: refused. To a link inside: the real file is recorded.
        let link = d.root + "/link.avhdx"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: d.outside + "/f.avhdx")
        #expect(throws: VHDXError.self) { try VHDSet.open(path: d.set, writable: true).relink(snapshot: snap.id, to: link) }
        try FileManager.default.removeItem(atPath: frozen)
        try FileManager.default.moveItem(atPath: d.outside + "/f.avhdx", toPath: d.root + "/moved.avhdx")
        try FileManager.default.removeItem(atPath: link)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: d.root + "/moved.avhdx")
        try VHDSet.open(path: d.set, writable: true).relink(snapshot: snap.id, to: link)
        #expect(try VHDSet.open(path: d.set).record.snapshot(snap.id)?.path == "moved.avhdx")
        _ = try VHDSet.open(path: d.set).openLeaf()
        #expect(try VHDSet.open(path: d.set).check().filter { $0.severity == .corruption }.isEmpty)
    }
}
