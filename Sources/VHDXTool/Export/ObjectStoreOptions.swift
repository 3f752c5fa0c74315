import ArgumentParser
import CPlatform
import VHDXObjectStore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where `s3://BUCKET/KEY` names go: `--endpoint`, else what every S3 tool reads
/// (`AWS_ENDPOINT_URL`, `AWS_REGION`, the keys, `~/.aws/credentials` and `~/.aws/config` with
/// `AWS_PROFILE`).
struct ObjectStoreOptions: ParsableArguments {
    @Option(name: .customLong("endpoint"), help: ArgumentHelp(
        "The S3-compatible service for s3:// names (path-style addressing), e.g. http://127.0.0.1:8333; default: AWS_ENDPOINT_URL.",
        valueName: "URL"))
    var endpoint: String?

    /// Makes `--endpoint` the one the library resolves (it reads the environment as the AWS
    /// tools do), and tunes the allocator when one of `names` is an object; call before any
    /// s3:// name is opened.
    func apply(to names: [String?]) {
        if let endpoint { setenv("AWS_ENDPOINT_URL", endpoint, 1) }
        if names.contains(where: { $0.map(S3Location.isS3) == true }) {
            // Transfers hold a few 8 MiB parts and chunks at a time, allocated and freed on the
            // HTTP client's threads. glibc's threshold for mapping an allocation on its own rises
            // to the largest one freed, after which those buffers come from per-thread heaps
            // that keep what is freed: a 4 GiB restore peaked at 148 MiB, an export at 128 MiB.
            // A fixed 256 KiB threshold returns each buffer when freed: 94 and 89 MiB, same
            // speed (Scripts/bench-s3.sh). Only for object storage: local work keeps the
            // allocator's default (its 1 MiB record buffers would be mapped and faulted in anew
            // each time under the fixed threshold; that cost was not measured).
            _ = swvhdx_set_mmap_threshold(256 << 10)
        }
    }
}
