internal import Crypto
import VHDX
import VHDXFormat
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

    /// Begins the upload and names the stream after it. The stream id is derived from the name
    /// and the multipart upload's id, and a run after a killed one continues the newest pending
    /// upload of the key (`ObjectUpload.beginContinuingNewest`): so it writes the same record
    /// headers as the killed run, and every part whose bytes did not change (all but the first,
    /// which holds the header with its time, and the last) is kept instead of sent again. The
    /// id is still unique among published streams: an upload id is completed at most once.
    func beginStream() throws(ExportError) -> GUID {
        let id: String
        do throws(S3Error) { id = try upload.beginContinuingNewest() } catch { throw RemoteStore.error(error, name) }
        var bytes = Array(SHA256.hash(data: Array("swift-vhdx export stream\0\(name)\0\(id)".utf8)).prefix(16))
        bytes[7] = bytes[7] & 0x0F | 0x80  // version 8 (RFC 9562: name-derived, custom)
        bytes[8] = bytes[8] & 0x3F | 0x80  // RFC variant
        return GUID(bytes: bytes) ?? .random()
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
    var parts: ObjectParts { ObjectParts(sent: upload.partsSent, reused: upload.partsReused) }
}
