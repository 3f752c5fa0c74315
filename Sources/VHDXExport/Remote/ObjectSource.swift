import VHDX
internal import VHDXObjectStore

/// A stream in object storage, read front to back: ranged GETs run ahead of the reader in
/// parallel (`ObjectReader`), every one pinned to the ETag seen at open, so an object replaced
/// mid-read fails instead of mixing two streams.
///
/// The first 4 KiB come from one small GET of their own: opening a stream to read its header
/// (an incremental's `--base`, a chain's order check) costs that, not the read-ahead's
/// megabytes. Reading on, the sequential reader starts at byte 0 and the prefix is skipped.
final class ObjectSource: StreamInput {
    static let prefixSize = 4096

    let name: String
    private(set) var position: UInt64 = 0
    private let reader: ObjectReader
    private var prefix: [UInt8]
    /// Bytes of the prefix the sequential reader has yet to skip.
    private var skip = 0

    init(_ name: String) throws(ExportError) {
        self.name = name
        let (client, at) = try RemoteStore.object(name)
        do throws(S3Error) {
            reader = try ObjectReader(client: client, location: at)
            prefix = try reader.read(range: 0..<min(reader.size, UInt64(ObjectSource.prefixSize)))
        } catch {
            throw RemoteStore.error(error, name)
        }
        skip = prefix.count
    }

    /// The object's size in bytes.
    var size: UInt64 { reader.size }

    func read(_ count: Int) throws(ExportError) -> [UInt8] {
        guard count > 0 else { return [] }
        var out: [UInt8] = []
        if position < UInt64(prefix.count) {
            let from = Int(position)
            out = Array(prefix[from..<min(prefix.count, from + count)])
            position += UInt64(out.count)
            if out.count == count { return out }
        }
        do throws(S3Error) {
            if skip > 0 {
                // The sequential reader starts at 0: what the prefix served is read past once.
                let dropped = try reader.read(skip)
                skip = 0
                guard dropped.count == prefix.count else {
                    throw S3Error(.badResponse, operation: "GetObject", message: "the object's first \(prefix.count) bytes read back as \(dropped.count)")
                }
            }
            let more = try reader.read(count - out.count)
            position += UInt64(more.count)
            out += more
            return out
        } catch {
            throw RemoteStore.error(error, name)
        }
    }

    /// `range` of the object in one GET, apart from the sequential reads (a trailer probe).
    func read(range: Range<UInt64>) throws(ExportError) -> [UInt8] {
        do throws(S3Error) { return try reader.read(range: range) } catch { throw RemoteStore.error(error, name) }
    }
}
