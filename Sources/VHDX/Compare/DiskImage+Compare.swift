/// Comparison, the library's side of `vhdx compare`.
extension DiskImage {
    /// Compares this disk's contents with `other`'s, like `qemu-img compare`, and says where
    /// they first differ.
    ///
    /// Ranges unallocated on both sides are skipped without reading; the rest is read in 4 MiB
    /// pieces (two buffers in all). Neither disk is modified.
    ///
    /// - Parameters:
    ///   - other: The second disk (``CompareResult/sizeB`` is its size).
    ///   - options: Whether sizes and allocation must match too (``CompareOptions/strict``).
    ///   - progress: Called as the comparison advances.
    /// - Returns: Whether they are identical, and if not, the first offset that differs and why.
    /// - Throws: ``VHDXError`` when either disk cannot be read (I/O errors, corruption): never
    ///   "different" for a disk that could not be read.
    public func compare(with other: DiskImage, options: CompareOptions = CompareOptions(), progress: Progress? = nil) throws(VHDXError) -> CompareResult {
        try ImageComparer(self, other, strict: options.strict).compare(progress: progress)
    }
}
