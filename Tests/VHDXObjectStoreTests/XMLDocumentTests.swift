import Testing
@testable import VHDXObjectStore

/// The hand-written reader of S3's XML answers.
@Suite struct XMLDocumentTests {
    @Test func readsWhatS3Sends() throws {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <!-- a comment -->
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Name>b</Name><IsTruncated>false</IsTruncated>
              <Contents><Key>a&amp;b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#233;&#x41;</Key><Size>12</Size></Contents>
              <Contents><Key><![CDATA[x&y<z>]]></Key><Size>0</Size><Owner/></Contents>
              <s3:Prefix xmlns:s3="urn:x">p/</s3:Prefix>
            </ListBucketResult>
            """
        let root = try #require(XMLElement.parse(Array(xml.utf8)))
        #expect(root.name == "ListBucketResult")
        #expect(root.value("Name") == "b")
        #expect(root.all("Contents").map { $0.value("Key") } == ["a&b <c> \"d\" 'e' éA", "x&y<z>"])
        #expect(root.all("Contents")[1].child("Owner")?.children.isEmpty == true)
        #expect(root.value("Prefix") == "p/")
    }

    @Test("malformed: nil, never a trap", arguments: [
        "", "<a>", "<a></b>", "<a>&bogus;</a>", "<a>&#xZZ;</a>", "<a x=\"1></a>", "<a></a><b></b>", "text",
        String(repeating: "<a>", count: 200) + String(repeating: "</a>", count: 200),
    ])
    func malformed(_ text: String) {
        #expect(XMLElement.parse(Array(text.utf8)) == nil)
    }
}
