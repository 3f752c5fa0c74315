import ArgumentParser
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
    /// tools do); call before any s3:// name is opened.
    func apply() {
        if let endpoint { setenv("AWS_ENDPOINT_URL", endpoint, 1) }
    }
}
