extension VHDXFile {
    /// Writes the bytes of `span` at virtual `offset` (as `write(_:at:)` with a buffer).
    public func write(_ span: RawSpan, at offset: UInt64) throws(VHDXError) {
        try span.withUnsafeBytes { (b) throws(VHDXError) in try write(b, at: offset) }
    }

    /// Fills `span` with the virtual disk's bytes from `offset` (as `read(into:at:)`).
    public func read(into span: inout MutableRawSpan, at offset: UInt64) throws(VHDXError) {
        try span.withUnsafeMutableBytes { (b) throws(VHDXError) in try read(into: b, at: offset) }
    }
}
