import Testing
import VHDXObjectStore
import VHDXTestSupport

@Suite struct S3LocationTests {
    @Test func parsesObjectsAndPrefixes() throws {
        let object = try S3Location(parsing: "s3://my-bucket/vm1/2026-12-07.vxs")
        #expect(object.bucket == "my-bucket")
        #expect(object.key == "vm1/2026-12-07.vxs")
        #expect(!object.isPrefix)
        #expect(object.description == "s3://my-bucket/vm1/2026-12-07.vxs")

        let folder = try S3Location(parsing: "s3://my-bucket/vm1/")
        #expect(folder.isPrefix)
        #expect(try folder.appending("a.vxs").key == "vm1/a.vxs")
        #expect(try S3Location(parsing: "s3://my-bucket").key == "")
        #expect(try S3Location(parsing: "s3://my-bucket/").isPrefix)
        #expect(try S3Location(parsing: "s3://b.example-1/k with space+é").key == "k with space+é")
    }

    @Test func recognizesTheScheme() {
        #expect(S3Location.isS3("s3://b/k"))
        #expect(S3Location.isS3("S3://b/k"))
        #expect(!S3Location.isS3("/tmp/s3://x"))
        #expect(!S3Location.isS3("disk.vxs"))
    }

    @Test(arguments: [
        ("s3://", "names no bucket"),
        ("s3:///key", "names no bucket"),
        ("s3://ab/key", "not a valid bucket name"),
        ("s3://Upper/key", "not a valid bucket name"),
        ("s3://under_score/key", "not a valid bucket name"),
        ("s3://-dash/key", "not a valid bucket name"),
        ("s3://bucket//key", "starts with '/'"),
        ("http://bucket/key", "not an S3 URL"),
    ])
    func rejectsMalformedURLs(_ url: String, _ why: String) {
        do {
            _ = try S3Location(parsing: url)
            Issue.record("\(url) was accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.description.contains(why), "\(error)")
        }
    }

    @Test func anObjectIsRequiredWhereOneIsRead() throws {
        #expect(throws: S3Error.self) { try S3Location(parsing: "s3://bucket/folder/").requireObject() }
        #expect(try S3Location(parsing: "s3://bucket/k").requireObject().key == "k")
    }
}
