import ArgumentParser
import VHDX
import VHDXChangeTracking

/// `--granule` and `--history` of `track enable` and `set create`: out-of-range values are
/// usage errors (exit 64), checked before anything is written, by the library's own rule
/// (`TrackingGeometry.validate`).
enum TrackingArguments {
    /// The history limit counts sealed *epochs* kept (the changes between two consecutive IDs):
    /// N epochs answer the N + 1 most recent IDs.
    static let historyHelp = ArgumentHelp(
        "Epochs of changes kept, 1 to \(TrackingGeometry.maxHistory) (default \(TrackingGeometry.defaultHistory)): N epochs keep the last N + 1 change IDs answerable.")

    /// "2 epochs (up to 3 IDs answer)".
    static func history(_ limit: UInt32) -> String {
        "\(limit) epoch\(limit == 1 ? "" : "s") (up to \(limit + 1) IDs answer)"
    }

    /// What can be checked without the image: the history's range, a granule that is a power of two.
    static func validate(granule: ByteCount?, history: UInt32?) throws {
        if let history, !(1...TrackingGeometry.maxHistory).contains(history) {
            throw ValidationError("--history \(history) is outside 1...\(TrackingGeometry.maxHistory)")
        }
        if let granule, granule.bytes.nonzeroBitCount != 1 {
            throw ValidationError("--granule \(granule.bytes) is not a power of two")
        }
    }

    /// What is wrong with the granule and history for `image` (bounds: its logical sector size
    /// and block size), nil when nothing is; nil too without a granule (the default fits).
    static func problem(granule: ByteCount?, history: UInt32?, for image: VHDXFile) -> String? {
        problem(granule: granule, history: history, logicalSectorSize: UInt64(image.logicalSectorSize),
                blockSize: image.blockSize, virtualSize: image.virtualSize)
    }

    static func problem(granule: ByteCount?, history: UInt32?, logicalSectorSize: UInt64, blockSize: UInt64, virtualSize: UInt64) -> String? {
        guard let granule else { return nil }
        return TrackingGeometry(granule: granule.bytes, historyLimit: history ?? TrackingGeometry.defaultHistory, virtualSize: virtualSize)
            .validate(logicalSectorSize: logicalSectorSize, blockSize: blockSize)
    }
}
