import VHDX
import VHDXFormat

/// Turning tracking on and off, and what it reports.
public enum ChangeTracking {
    /// Adds a tracking region to a writable image (through the log) and returns its tracker,
    /// attached as the image's observer. `granule`: a power of two from the logical sector size
    /// to the block size (default 64 KiB, clamped to those bounds); `history`: sealed epochs
    /// kept, 1...64 (default 16).
    @discardableResult
    public static func enable(_ image: VHDXFile, granule: UInt64? = nil, history: UInt32? = nil) throws(VHDXError) -> ChangeTracker {
        guard image.isWritable else { throw VHDXError(.readOnly, "enabling change tracking writes to the disk: open it writable", path: image.path) }
        guard image.region(ChangeTracker.regionGUID) == nil else {
            throw VHDXError(.invalidArgument, "change tracking is already enabled (`track disable` first to start over)", path: image.path)
        }
        let lss = UInt64(image.layout.logicalSectorSize)
        let g = granule ?? min(max(TrackingGeometry.defaultGranule, lss), image.blockSize)
        let geometry = TrackingGeometry(granule: g, historyLimit: history ?? TrackingGeometry.defaultHistory, virtualSize: image.virtualSize)
        if let problem = geometry.validate(logicalSectorSize: lss, blockSize: image.blockSize) {
            throw VHDXError(.invalidArgument, problem, path: image.path)
        }
        let header = TrackingHeader(trackingID: .random(), virtualDiskID: image.layout.virtualDiskID, geometry: geometry,
                                    dataWriteGUID: image.header.dataWriteGUID, virtualSize: image.virtualSize, time: ChangeTracker.now())
        _ = try image.addRegion(ChangeTracker.regionGUID, length: geometry.regionLength, initialPages: [(0, header.encode())])
        guard let tracker = try ChangeTracker.attach(to: image) else {
            throw VHDXError(.io, "the tracking region just added cannot be found", path: image.path)
        }
        return tracker
    }

    /// Removes the tracking region. Every change ID of the disk becomes unknown.
    public static func disable(_ image: VHDXFile) throws(VHDXError) {
        guard image.region(ChangeTracker.regionGUID) != nil else {
            throw VHDXError(.invalidArgument, "change tracking is not enabled", path: image.path)
        }
        image.detachObserver()
        try image.removeRegion(ChangeTracker.regionGUID)
    }

    /// The tracker of `image`, or the "not enabled" error (`.engine` when the region cannot be read).
    public static func tracker(of image: VHDXFile) throws(ChangeTrackingError) -> ChangeTracker {
        guard let t = try engine({ () throws(VHDXError) in try ChangeTracker.attach(to: image) }) else {
            throw ChangeTrackingError(.notEnabled, "change tracking is not enabled on this disk (enable it first)", path: image.path)
        }
        return t
    }
}

/// What `track status` shows.
public struct TrackingStatus: Sendable {
    public var granule: UInt64
    public var historyLimit: UInt32
    public var regionBytes: UInt64
    public var generation: UInt32
    public var openEpoch: UInt64
    public var latestID: ChangeID?
    public var retainedIDs: [ChangeID]
    /// Something changed since the latest ID (or there is no ID yet to compare with).
    public var changedSinceLatest: Bool
    /// Set when tracking was reset (or will be, when the disk is next opened writable).
    public var lastReset: (time: UInt64, reason: String)?
    /// Noticed at open: a fold after an unclean stop, a reset.
    public var notes: [String]
}

extension ChangeTracker {
    public var status: TrackingStatus {
        var reset: (UInt64, String)? = header.resetCode == .none ? nil : (header.resetTime, header.resetText)
        if let (_, text) = pendingReset { reset = (ChangeTracker.now(), text + " (found now; recorded when the disk is next written)") }
        return TrackingStatus(granule: header.geometry.granule, historyLimit: header.geometry.historyLimit,
                              regionBytes: UInt64(region.length), generation: header.generation, openEpoch: header.currentEpoch,
                              latestID: latestID, retainedIDs: retainedIDs,
                              changedSinceLatest: !current.isEmpty || header.isDirty || pendingReset != nil,
                              lastReset: reset, notes: notes)
    }
}
