import Testing
import VHDX
import VHDXFormat
import VHDXTestSupport

/// What an open or a check found is a machine-readable code (issue 19): the engine decides on
/// it (an open refuses as unsupported, not corrupt, by the code), never on a message's words.
@Suite struct FindingCodeTests {
    static func bytes(_ name: String) throws -> [UInt8] {
        let c = try #require(CorruptionCorpusTests.cases.first { $0.name == name }, "no corpus case \(name)")
        return c.mutate(CorruptionCorpusTests.base)
    }

    static func findings(_ name: String) throws -> [Finding] {
        try Checker.check(storage: MemoryStorage(try bytes(name), writable: false)).findings
    }

    @Test("an unknown required region or metadata item: a finding coded .unsupported, and the open refuses as unsupported",
          arguments: ["unknown required region", "metadata entry 0 unknown required id"])
    func unsupportedByCode(_ name: String) throws {
        let found = try Self.findings(name)
        #expect(found.contains { $0.code == .unsupported && $0.kind == .corruption }, "\(found)")
        #expect(throws: VHDXError(.unsupported, "")) { try VHDXFile(storage: MemoryStorage(try Self.bytes(name), writable: false)) }
    }

    @Test("each check says what it found as a code", arguments: [
        ("file identifier signature", Finding.Code.badSignature),
        ("reserved header bytes set", .reservedNonZero),
        ("region overlaps the log", .overlap),
        ("HasParent without a locator", .inconsistent),
        ("BAT duplicate offsets", .overlap),
        ("BAT entry past EOF", .outOfBounds),
        ("BAT entry in header section", .outOfBounds),
        ("BAT reserved state 4", .invalidState),
        ("BAT reserved bits", .reservedNonZero),
        ("BAT partially present in a dynamic disk", .invalidState),
        ("BAT zero state with an offset", .inconsistent),
    ])
    func codes(_ name: String, _ code: Finding.Code) throws {
        let found = try Self.findings(name)
        #expect(found.contains { $0.code == code }, "\(name): \(found.map { "\($0.code): \($0)" })")
    }

    @Test("a finding made from a format error carries the format error's code")
    func fromFormatError() throws {
        let r = try Checker.check(storage: MemoryStorage(try Self.bytes("file identifier signature"), writable: false))
        let f = try #require(r.findings.first { $0.structure == "file identifier" })
        #expect(f.code == .badSignature)
        #expect(Finding.Code(FormatError.Code.badChecksum) == .badChecksum)
        #expect(FormatError.Code.reservedNonZero.description == "reserved field not zero")
    }
}
