#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Endpoint, region and credentials, found the way the AWS tools find them.
package struct S3Configuration: Sendable, Equatable {
    package var endpoint: S3Endpoint
    package var region: String
    package var credentials: S3Credentials

    package init(endpoint: S3Endpoint, region: String, credentials: S3Credentials) {
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
    }

    /// Resolves the configuration; `environment` is passed in (the process's by default) so the
    /// rules are testable. Precedence, first found wins:
    /// - endpoint: `endpoint` (`--endpoint URL`), `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the
    ///   profile's `endpoint_url` in the config file, else AWS's `https://s3.REGION.amazonaws.com`;
    /// - region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`, else `us-east-1`;
    /// - credentials: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), the
    ///   profile's section of the credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
    ///   `~/.aws/credentials`), then of the config file (`AWS_CONFIG_FILE`, else `~/.aws/config`);
    /// - profile: `profile`, `AWS_PROFILE`, `AWS_DEFAULT_PROFILE`, else `default`. A profile named
    ///   explicitly must exist in one of the files.
    package static func resolve(endpoint: String? = nil, profile: String? = nil,
                                environment: [String: String] = ProcessInfo.processInfo.environment) throws(S3Error) -> S3Configuration {
        func env(_ name: String) -> String? {
            guard let v = environment[name], !v.isEmpty else { return nil }
            return v
        }
        let explicitProfile = profile ?? env("AWS_PROFILE") ?? env("AWS_DEFAULT_PROFILE")
        let profileName = explicitProfile ?? "default"
        let home = env("HOME") ?? ""
        let credentialsPath = env("AWS_SHARED_CREDENTIALS_FILE") ?? "\(home)/.aws/credentials"
        let configPath = env("AWS_CONFIG_FILE") ?? "\(home)/.aws/config"
        let credentialsFile = try readConfig(credentialsPath)
        let configFile = try readConfig(configPath)
        let fromCredentials = credentialsFile?.credentialsSection(profile: profileName)
        let fromConfig = configFile?.configSection(profile: profileName)
        if let explicitProfile, fromCredentials == nil, fromConfig == nil {
            throw S3Error(.invalidArgument, operation: "reading the AWS configuration",
                          message: "the profile '\(explicitProfile)' is in neither \(credentialsPath) nor \(configPath)")
        }

        let region = env("AWS_REGION") ?? env("AWS_DEFAULT_REGION") ?? fromConfig?["region"] ?? "us-east-1"

        let resolvedEndpoint: S3Endpoint
        if let url = endpoint ?? env("AWS_ENDPOINT_URL_S3") ?? env("AWS_ENDPOINT_URL") ?? fromConfig?["endpoint_url"] {
            resolvedEndpoint = try S3Endpoint(parsing: url)
        } else {
            resolvedEndpoint = .aws(region: region)
        }

        let credentials: S3Credentials
        // Half a key pair in the environment is a mistake, as the AWS tools see it.
        if (env("AWS_ACCESS_KEY_ID") == nil) != (env("AWS_SECRET_ACCESS_KEY") == nil) {
            let (set, unset) = env("AWS_ACCESS_KEY_ID") != nil ? ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") : ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
            throw S3Error(.invalidArgument, operation: "reading the AWS configuration",
                          message: "\(set) is set but \(unset) is not")
        }
        if let id = env("AWS_ACCESS_KEY_ID"), let secret = env("AWS_SECRET_ACCESS_KEY") {
            credentials = S3Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: env("AWS_SESSION_TOKEN"))
        } else if let found = fileCredentials(fromCredentials) ?? fileCredentials(fromConfig) {
            credentials = found
        } else {
            throw S3Error(.invalidArgument, operation: "reading the AWS configuration",
                          message: "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put aws_access_key_id and aws_secret_access_key in the profile '\(profileName)' of \(credentialsPath)")
        }
        return S3Configuration(endpoint: resolvedEndpoint, region: region, credentials: credentials)
    }

    private static func fileCredentials(_ section: [String: String]?) -> S3Credentials? {
        guard let section, let id = section["aws_access_key_id"], !id.isEmpty,
              let secret = section["aws_secret_access_key"], !secret.isEmpty else { return nil }
        let token = section["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 }
        return S3Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token)
    }

    /// The file parsed, or nil when it does not exist; unreadable files are errors.
    private static func readConfig(_ path: String) throws(S3Error) -> AWSConfigFile? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw S3Error(.invalidArgument, operation: "reading the AWS configuration",
                          message: "\(path) exists but cannot be read")
        }
        return AWSConfigFile(text: String(decoding: data, as: UTF8.self))
    }
}
