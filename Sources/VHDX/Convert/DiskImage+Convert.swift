/// Conversion, the library's side of `vhdx convert`.
extension DiskImage {
    /// Called as the work advances: bytes of the disk done, of `total`.
    public typealias Progress = (_ done: UInt64, _ total: UInt64) -> Void

    /// Writes the disk to a new file at `path`, as a raw image or a VHDX.
    ///
    /// Only what the source holds is read: unallocated ranges never are, and runs of zeros
    /// become holes (raw) or unallocated blocks and sparse ranges (VHDX). The output is built as
    /// a temporary file beside `path`, flushed, then renamed over it, so a failure never leaves a
    /// partial output. The source is never modified.
    ///
    /// - Parameters:
    ///   - path: The output. Refused (`invalidArgument`, nothing written) when it is the source
    ///     or a layer of its chain (by device and inode, so also through another name or a
    ///     link), or not a regular file (a device, FIFO, socket or directory).
    ///   - format: A raw image, or a VHDX laid out as ``VHDXConversionOptions`` say.
    ///   - overwrite: Replace an existing file at `path` (its permissions are kept).
    ///   - progress: Called as the copy advances.
    /// - Throws: ``VHDXError``: the refusals above, an invalid VHDX layout, an existing
    ///   `path` without `overwrite`, I/O errors, corruption found while reading.
    public func convert(to path: String, format: ConversionFormat, overwrite: Bool = false, progress: Progress? = nil) throws(VHDXError) {
        switch (format, backing) {
        case (.vhdx(let options), _):
            try VHDXConverter(source: self, options: options.createOptions(for: self)).write(toPath: path, overwrite: overwrite, progress: progress)
        case (.raw, .vhdx(let image)):
            // Through the chain's resolved extents, each layer's file copied directly.
            try RawConverter(source: image).write(toPath: path, overwrite: overwrite, progress: progress)
        case (.raw, .raw):
            // Through the filesystem's holes.
            try RawCopier(source: self).write(toPath: path, overwrite: overwrite, progress: progress)
        }
    }

    /// Writes every byte of the disk, zeros included, in order, to an open file descriptor: a
    /// pipe, a terminal or a file (standard output is 1). The descriptor is not closed.
    ///
    /// - Throws: ``VHDXError``: a write that fails (a closed pipe, a full disk), I/O errors and
    ///   corruption found while reading. Bytes written before the failure stay written.
    public func writeRaw(toDescriptor descriptor: Int32, progress: Progress? = nil) throws(VHDXError) {
        switch backing {
        case .vhdx(let image): try RawConverter(source: image).write(toDescriptor: descriptor, progress: progress)
        case .raw: try RawCopier(source: self).write(toDescriptor: descriptor, progress: progress)
        }
    }
}
