import VHDX
internal import VHDXObjectStore

/// Where an export to `s3://BUCKET/KEY` goes: a multipart upload (`ObjectUpload`, parts sent
/// on several connections, memory bounded). Nothing is visible under the key until `publish()`
/// (CompleteMultipartUpload: the atomic publish); `abandon()` aborts the upload, best effort (a
/// server that cannot be reached keeps the parts, and a re-run to the same key reuses them).
final class ObjectSink: ByteSink {
    let name: String
    let upload: ObjectUpload

    init(_ name: String) throws(ExportError) {
        self.name = name
        let (client, at) = try RemoteStore.object(name)
        do throws(S3Error) {
            upload = try ObjectUpload(client: client, location: at)
        } catch {
            throw RemoteStore.error(error, name)
        }
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws(VHDXError) {
        do throws(S3Error) { try upload.append(bytes) } catch { throw RemoteStore.engineError(error, name) }
    }

    func append(_ bytes: [UInt8]) throws(VHDXError) {
        do throws(S3Error) { try upload.append(bytes) } catch { throw RemoteStore.engineError(error, name) }
    }

    /// Makes the object appear under its key, whole.
    func publish() throws(VHDXError) {
        do throws(S3Error) { try upload.complete() } catch { throw RemoteStore.engineError(error, name) }
    }

    func abandon() { try? upload.abort() }

    /// Parts sent, and parts kept from an earlier run's pending upload of the same bytes.
    var parts: (sent: Int, reused: Int) { (upload.partsSent, upload.partsReused) }
}
