import VHDX
import VHDXFormat

/// Reads and writes an image's origin record (its own region, changed through the log).
enum OriginStore {
    /// The image's record, nil when it has none (not made by export or restore).
    static func read(_ image: VHDXFile) throws(ExportError) -> ImageOrigin? {
        guard let region = image.region(ImageOrigin.regionGUID) else { return nil }
        let page: [UInt8]
        do {
            page = try image.readMetadataPage(at: region.fileOffset)
        } catch let e where e.code == .io {
            // A device that cannot be read now says nothing about the record: never "damaged".
            throw ExportError(.io, "reading the image's export origin record failed: \(e.message)", path: image.path)
        } catch {
            throw ExportError(.damaged, "the image's export origin record is damaged: \(error)", path: image.path)
        }
        do {
            return try ImageOrigin.decode(page, at: region.fileOffset)
        } catch {
            throw ExportError(.damaged, "the image's export origin record is damaged: \(error)", path: image.path)
        }
    }

    /// Records `origin` in the image, durable when it returns.
    static func write(_ origin: ImageOrigin, to image: VHDXFile) throws(VHDXError) {
        let page = origin.encode()
        if let region = image.region(ImageOrigin.regionGUID) {
            try image.commitObserverPages([(region.fileOffset, page)])
        } else {
            _ = try image.addRegion(ImageOrigin.regionGUID, length: Layout.MiB, initialPages: [(0, page)])
        }
        try image.flush()
    }

    /// What a previous export holds: a stream's header, or an exported or restored image's
    /// origin (refused when an apply on it was interrupted or someone wrote it since).
    static func identity(of path: String) throws -> StreamHeader {
        if try looksLikeVHDX(path) {
            let image = try VHDXFile.openFile(path: path)
            guard let origin = try read(image) else {
                throw ExportError(.notAnExport, "this VHDX was not made by `vhdx export` or `vhdx restore` (it has no export origin record)", path: path)
            }
            try check(origin, of: image)
            return origin.holds
        }
        return try StreamReader(path: path).header
    }

    /// Refuses an image whose record no longer describes it.
    static func check(_ origin: ImageOrigin, of image: VHDXFile) throws(ExportError) {
        if let p = origin.pending {
            throw ExportError(.interrupted, "an apply of the incremental {\(p.streamID)} (to \(p.targetID)) was interrupted: run that apply again to complete it", path: image.path)
        }
        guard origin.dataWriteGUID == image.header.dataWriteGUID else {
            throw ExportError(.wrongBase, "the image was written since it was exported or restored (its DataWriteGuid changed), so it no longer holds \(origin.holds.targetID)", path: image.path)
        }
    }

    static func looksLikeVHDX(_ path: String) throws -> Bool {
        guard path != "-", !RemoteStore.names(path) else { return false }
        let s = try ByteSource(path: path)
        return try s.read(8) == DiskImage.signature
    }
}
