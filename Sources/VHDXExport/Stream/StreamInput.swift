import VHDX

/// A stream read front to back, wherever it lies: a file or standard input (`ByteSource`), or
/// an object in S3-compatible storage (`ObjectSource`, for an `s3://BUCKET/KEY` name).
protocol StreamInput: AnyObject {
    /// How messages name it.
    var name: String { get }
    /// Bytes read so far.
    var position: UInt64 { get }
    /// Exactly `count` bytes, or fewer at the end of the stream.
    func read(_ count: Int) throws(ExportError) -> [UInt8]
}

extension ByteSource: StreamInput {}

enum StreamInputs {
    /// `path` opened for reading: `s3://BUCKET/KEY` from object storage, anything else as a file
    /// (`-`: standard input). `name` labels messages instead of `path`.
    static func open(_ path: String, name: String? = nil) throws(ExportError) -> any StreamInput {
        if RemoteStore.names(path) { return try ObjectSource(path) }
        return try ByteSource(path: path, name: name)
    }
}
