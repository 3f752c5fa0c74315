import Synchronization
import VHDX
internal import VHDXObjectStore

/// The object storage an `s3://BUCKET/KEY` name reaches: one client per process, configured the
/// way every S3 tool is (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`/`…SECRET…`/
/// `AWS_SESSION_TOKEN`, then `~/.aws/credentials` and `~/.aws/config` with `AWS_PROFILE`; the
/// CLI's `--endpoint` sets `AWS_ENDPOINT_URL`). Created on first use, so local work never
/// starts an event loop.
enum RemoteStore {
    private static let client = Mutex<S3Client?>(nil)

    /// Whether `name` is an object-storage name (`s3://…`) rather than a file.
    static func names(_ name: String) -> Bool { S3Location.isS3(name) }

    /// The process's client, made from the environment on first use.
    static func shared() throws(ExportError) -> S3Client {
        let result: Result<S3Client, S3Error> = client.withLock { c in
            if let c { return .success(c) }
            do throws(S3Error) {
                let made = S3Client(configuration: try S3Configuration.resolve())
                c = made
                return .success(made)
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let c): return c
        case .failure(let e): throw error(e, nil)
        }
    }

    /// `name` parsed as an object's location.
    static func location(_ name: String) throws(ExportError) -> S3Location {
        do { return try S3Location(parsing: name).requireObject() } catch { throw RemoteStore.error(error, name) }
    }

    /// The client and the object `name` names: what every object sink and source starts from.
    static func object(_ name: String) throws(ExportError) -> (client: S3Client, location: S3Location) {
        let at = try location(name)
        return (try shared(), at)
    }

    /// Whether an object exists under `name` (for refusing to replace it).
    static func exists(_ name: String) throws(ExportError) -> Bool {
        let (client, at) = try object(name)
        do throws(S3Error) {
            _ = try client.headObject(at)
            return true
        } catch {
            if error.code == .noSuchKey { return false }
            throw RemoteStore.error(error, name)
        }
    }

    /// An object-storage failure as the export layer's error: what could not be done, where and
    /// why (S3's code, the endpoint, the attempts). A missing object, bucket, bad credentials or
    /// a refused request are I/O errors of the command (exit 1), each saying which.
    static func error(_ e: S3Error, _ name: String?) -> ExportError {
        // S3's description names the object already (s3://BUCKET/KEY: …); a path would repeat it.
        ExportError(.io, e.description, path: e.location == nil ? name : nil)
    }

    /// The same for the engine's sinks, which throw `VHDXError`.
    static func engineError(_ e: S3Error, _ name: String) -> VHDXError {
        VHDXError(.io, e.description, path: name)
    }
}
