import Foundation
import Testing
import VHDXObjectStore
import VHDXTestSupport

/// Where endpoint, region and credentials come from, and in which order (hermetic: the
/// environment is a dictionary and the AWS files are temporary).
@Suite struct S3ConfigurationTests {
    /// A HOME with ~/.aws/credentials and ~/.aws/config as given.
    func home(credentials: String? = nil, config: String? = nil) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vhdx-aws-\(UUID().uuidString)")
        let aws = dir.appendingPathComponent(".aws")
        try FileManager.default.createDirectory(at: aws, withIntermediateDirectories: true)
        if let credentials { try credentials.write(to: aws.appendingPathComponent("credentials"), atomically: true, encoding: .utf8) }
        if let config { try config.write(to: aws.appendingPathComponent("config"), atomically: true, encoding: .utf8) }
        return dir.path
    }

    let files = (credentials: """
        [default]
        aws_access_key_id = FILEDEFAULT
        aws_secret_access_key = file-default-secret

        [backup]
        aws_access_key_id=FILEBACKUP
        aws_secret_access_key=file-backup-secret
        aws_session_token=file-backup-token
        """, config: """
        # comment
        [default]
        region = eu-west-1

        [profile backup]
        region = eu-central-1
        endpoint_url = http://10.1.2.3:9000
        s3 =
          addressing_style = path

        [profile keysinconfig]
        aws_access_key_id = CONFIGKEY
        aws_secret_access_key = config-secret
        """)

    @Test func environmentComesFirst() throws {
        let home = try home(credentials: files.credentials, config: files.config)
        let c = try S3Configuration.resolve(environment: [
            "HOME": home, "AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "env-secret",
            "AWS_SESSION_TOKEN": "env-token", "AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "us-west-2",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:8333", "AWS_PROFILE": "backup",
        ])
        #expect(c.credentials == S3Credentials(accessKeyID: "ENVKEY", secretAccessKey: "env-secret", sessionToken: "env-token"))
        #expect(c.region == "ap-south-1")
        #expect(c.endpoint.description == "http://127.0.0.1:8333")
    }

    @Test func theEndpointFlagBeatsTheEnvironment() throws {
        let c = try S3Configuration.resolve(endpoint: "https://minio.example:9443/", environment: [
            "AWS_ACCESS_KEY_ID": "K", "AWS_SECRET_ACCESS_KEY": "S", "AWS_ENDPOINT_URL": "http://127.0.0.1:8333",
        ])
        #expect(c.endpoint.description == "https://minio.example:9443")
        #expect(c.endpoint.hostHeader == "minio.example:9443")
        // AWS_ENDPOINT_URL_S3 (service-specific) beats AWS_ENDPOINT_URL.
        let s3 = try S3Configuration.resolve(environment: [
            "AWS_ACCESS_KEY_ID": "K", "AWS_SECRET_ACCESS_KEY": "S", "AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_S3": "http://b:2",
        ])
        #expect(s3.endpoint.description == "http://b:2")
    }

    @Test func defaultRegionIsDefaultRegionThenUSEast1() throws {
        let keys = ["AWS_ACCESS_KEY_ID": "K", "AWS_SECRET_ACCESS_KEY": "S", "HOME": try home()]
        #expect(try S3Configuration.resolve(environment: keys.merging(["AWS_DEFAULT_REGION": "us-west-2"]) { a, _ in a }).region == "us-west-2")
        let bare = try S3Configuration.resolve(environment: keys)
        #expect(bare.region == "us-east-1")
        #expect(bare.endpoint.description == "https://s3.us-east-1.amazonaws.com")
    }

    @Test func theDefaultProfileOfTheFiles() throws {
        let c = try S3Configuration.resolve(environment: ["HOME": try home(credentials: files.credentials, config: files.config)])
        #expect(c.credentials == S3Credentials(accessKeyID: "FILEDEFAULT", secretAccessKey: "file-default-secret"))
        #expect(c.region == "eu-west-1")
        #expect(c.endpoint.description == "https://s3.eu-west-1.amazonaws.com")
    }

    @Test func aNamedProfileOfTheFiles() throws {
        let home = try home(credentials: files.credentials, config: files.config)
        for c in [try S3Configuration.resolve(environment: ["HOME": home, "AWS_PROFILE": "backup"]),
                  try S3Configuration.resolve(profile: "backup", environment: ["HOME": home, "AWS_PROFILE": "nonesuch"])] {
            #expect(c.credentials == S3Credentials(accessKeyID: "FILEBACKUP", secretAccessKey: "file-backup-secret", sessionToken: "file-backup-token"))
            #expect(c.region == "eu-central-1")
            // The nested `s3 =` block's indented lines are not top-level keys.
            #expect(c.endpoint.description == "http://10.1.2.3:9000")
        }
        // Keys may also sit in the config file's profile.
        let k = try S3Configuration.resolve(environment: ["HOME": home, "AWS_PROFILE": "keysinconfig"])
        #expect(k.credentials.accessKeyID == "CONFIGKEY")
    }

    @Test func fileLocationsFromTheEnvironment() throws {
        let elsewhere = try home(credentials: "[default]\naws_access_key_id = MOVED\naws_secret_access_key = moved\n",
                                 config: "[default]\nregion = sa-east-1\n")
        let c = try S3Configuration.resolve(environment: [
            "HOME": try home(credentials: files.credentials, config: files.config),
            "AWS_SHARED_CREDENTIALS_FILE": elsewhere + "/.aws/credentials",
            "AWS_CONFIG_FILE": elsewhere + "/.aws/config",
        ])
        #expect(c.credentials.accessKeyID == "MOVED")
        #expect(c.region == "sa-east-1")
    }

    @Test func halfAKeyPairInTheEnvironmentIsAnError() throws {
        let home = try home(credentials: files.credentials)
        let e = #expect(throws: S3Error.self) {
            try S3Configuration.resolve(environment: ["HOME": home, "AWS_ACCESS_KEY_ID": "ONLYTHEID"])
        }
        #expect(e?.description.contains("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not") == true)
    }

    @Test func clearErrors() throws {
        let empty = try home()
        let none = #expect(throws: S3Error.self) { try S3Configuration.resolve(environment: ["HOME": empty]) }
        #expect(none?.code == .invalidArgument)
        #expect(none?.description.contains("no credentials") == true)

        let missing = #expect(throws: S3Error.self) {
            try S3Configuration.resolve(environment: ["HOME": empty, "AWS_PROFILE": "ghost", "AWS_ACCESS_KEY_ID": "K", "AWS_SECRET_ACCESS_KEY": "S"])
        }
        #expect(missing?.description.contains("'ghost'") == true)

        for bad in ["ftp://host", "http://", "http://host:99999", "http://host/path", "host:9000"] {
            let e = #expect(throws: S3Error.self) {
                try S3Configuration.resolve(endpoint: bad, environment: ["AWS_ACCESS_KEY_ID": "K", "AWS_SECRET_ACCESS_KEY": "S"])
            }
            #expect(e?.code == .invalidArgument)
            #expect(e?.description.contains(bad) == true)
        }
    }
}
