import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXExport
import VHDXFormat
import VHDXTestSupport

/// A tracked disk in a fresh folder with a byte model of its content: what the export tests
/// write through the engine (tracked), export, restore and compare with.
final class ExportLab {
    let dir: String
    let disk: String
    var model: [UInt8]
    var rng: SplitMix
    let blockSize: Int

    init(size: UInt64 = 8 << 20, blockSize: UInt32 = 1 << 20, granule: UInt64? = nil, seed: UInt64 = 1, name: String = #function) throws {
        dir = Fixtures.tempPath("export-" + name.filter { $0.isLetter || $0.isNumber })
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        disk = dir + "/disk.vhdx"
        model = [UInt8](repeating: 0, count: Int(size))
        rng = SplitMix(seed: seed)
        self.blockSize = Int(blockSize)
        var o = CreateOptions(virtualSize: size)
        o.blockSize = blockSize
        try VHDXCreator.create(path: disk, options: o)
        do {
            let image = try VHDXFile.open(path: disk, writable: true)
            try ChangeTracking.enable(image, granule: granule)
            try image.close()
        }
    }

    /// A copy of the lab: its files in a new folder, the same model.
    init(copying other: ExportLab, name: String = "copy") throws {
        dir = Fixtures.tempPath("export-" + name.filter { $0.isLetter || $0.isNumber })
        try FileManager.default.copyItem(atPath: other.dir, toPath: dir)
        disk = dir + "/disk.vhdx"
        model = other.model
        rng = other.rng
        blockSize = other.blockSize
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    func path(_ name: String) -> String { dir + "/" + name }

    /// Opens the disk writable with its tracker attached, runs `body`, closes it.
    func change(_ body: (VHDXFile) throws -> Void) throws {
        let image = try VHDXFile.open(path: disk, writable: true)
        try ChangeTracker.attach(to: image)
        try body(image)
        try image.close()
    }

    /// Random bytes at `offset` (any alignment), into the model too.
    func write(_ count: Int, at offset: Int) throws {
        let bytes = rng.bytes(count)
        try change { try $0.write(bytes, at: UInt64(offset)) }
        model.replaceSubrange(offset..<offset + count, with: bytes)
    }

    /// A compressible pattern at `offset`.
    func writePattern(_ count: Int, at offset: Int, byte: UInt8 = 0x5a) throws {
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 / 512) ^ byte }
        try change { try $0.write(bytes, at: UInt64(offset)) }
        model.replaceSubrange(offset..<offset + count, with: bytes)
    }

    func zero(_ count: Int, at offset: Int) throws {
        try change { try $0.writeZeroes(at: UInt64(offset), length: UInt64(count)) }
        model.replaceSubrange(offset..<offset + count, with: repeatElement(0, count: count))
    }

    /// A trim, with the model following the engine's documented rule (VHDXFile.trim, README
    /// "Write path") rather than reading the disk back: each block the range covers whole — up to
    /// the end of the disk for a last, shorter block — becomes PAYLOAD_BLOCK_UNMAPPED, which a
    /// disk without a parent reads as zeros ([MS-VHDX] 2.5.1.1); blocks the range covers only in
    /// part keep their bytes (a trim is advisory).
    func trim(_ count: Int, at offset: Int) throws {
        try change { try $0.trim(at: UInt64(offset), length: UInt64(count)) }
        let end = offset + count
        var start = (offset + blockSize - 1) / blockSize * blockSize
        while start < end {
            let blockEnd = min(start + blockSize, model.count)
            if blockEnd <= end { model.replaceSubrange(start..<blockEnd, with: repeatElement(0, count: blockEnd - start)) }
            start += blockSize
        }
    }

    func resize(to size: Int) throws {
        try change { try $0.resize(to: UInt64(size)) }
        if size < model.count { model.removeSubrange(size...) } else { model += [UInt8](repeating: 0, count: size - model.count) }
    }

    @discardableResult
    func export(_ name: String, base: String? = nil, since: ChangeID? = nil) throws -> ExportSummary {
        try Exporter.export(disk, to: path(name), options: ExportOptions(base: base.map(path), since: since))
    }

    /// The whole virtual disk of an image (VHDX through its chain, or raw bytes).
    static func content(_ path: String) throws -> [UInt8] {
        let head = FileManager.default.contents(atPath: path)?.prefix(8)
        guard head.map(Array.init) == Array("vhdxfile".utf8) else { return [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }
        let image = try VHDXFile.open(path: path)
        return try image.read(at: 0, count: Int(image.virtualSize))
    }

    static func fileBytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }

    /// Files in the lab's folder (temporaries of a failed command would show here).
    func listing() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: dir).sorted() }
}
