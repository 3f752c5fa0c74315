import VHDX
internal import VHDXObjectStore

/// An object read by ranges (HEAD for its size, one ranged GET per read): what `backups list`
/// needs of a stream in a bucket, its header at the front and its trailer at the end.
final class ObjectRangedSource: RangedSource {
    let name: String
    private let location: S3Location
    private let client: S3Client
    private let knownSize: UInt64

    init(_ name: String, location: S3Location, size: UInt64, client: S3Client) {
        self.name = name
        self.location = location
        self.client = client
        knownSize = size
    }

    func size() throws(ExportError) -> UInt64 { knownSize }

    func read(at offset: UInt64, count: Int) throws(ExportError) -> [UInt8] {
        let end = min(knownSize, offset + UInt64(max(0, count)))
        guard offset < end else { return [] }
        do throws(S3Error) {
            return try client.getObject(location, range: offset..<end)
        } catch {
            throw RemoteStore.error(error, name)
        }
    }

    /// The objects directly under `prefix` (`s3://BUCKET/PREFIX/`; "folders" below it are not
    /// searched, as a local folder's subfolders are not), each named by its key's last part.
    static func listing(_ prefix: String) throws(ExportError) -> [(name: String, source: RangedSource)] {
        let at: S3Location
        do throws(S3Error) { at = try S3Location(parsing: prefix) } catch { throw RemoteStore.error(error, prefix) }
        let client = try RemoteStore.shared()
        let folder = at.key.isEmpty || at.key.hasSuffix("/") ? at.key : at.key + "/"
        let page: ObjectPage
        do throws(S3Error) {
            page = try client.listAllObjects(bucket: at.bucket, prefix: folder, delimiter: "/")
        } catch {
            throw RemoteStore.error(error, prefix)
        }
        var out: [(name: String, source: RangedSource)] = []
        for object in page.objects.sorted(by: { $0.key < $1.key }) where object.key != folder {
            let name = String(object.key.dropFirst(folder.count))
            let location: S3Location
            do throws(S3Error) { location = try S3Location(bucket: at.bucket, key: object.key) } catch { throw RemoteStore.error(error, prefix) }
            out.append((name: name, source: ObjectRangedSource("s3://\(at.bucket)/\(object.key)", location: location, size: object.size, client: client)))
        }
        return out
    }
}
