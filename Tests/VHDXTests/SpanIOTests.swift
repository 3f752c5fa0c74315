import Foundation
import Testing
import VHDX
import VHDXTestSupport

/// The span overloads read and write the same bytes as the buffer ones.
@Suite("Span I/O")
struct SpanIOTests {
    @Test("write(RawSpan) and read(into: MutableRawSpan) round-trip through a dynamic disk")
    func spans() throws {
        let path = Fixtures.tempPath("span.vhdx")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try VHDXCreator.create(path: path, options: CreateOptions(virtualSize: 8 << 20))
        var rng = SplitMix(seed: 9)
        let bytes = rng.bytes(5000)
        do {
            let image = try VHDXFile.open(path: path, writable: true)
            try image.write(bytes.span.bytes, at: 3 << 20 | 512)
            try image.close()
        }
        var back = [UInt8](repeating: 0, count: bytes.count)
        let reader = try VHDXFile.open(path: path)
        do {
            var elements = back.mutableSpan
            var span = elements.mutableBytes
            try reader.read(into: &span, at: 3 << 20 | 512)
        }
        #expect(back == bytes)
        #expect(try reader.read(at: 3 << 20 | 512, count: bytes.count) == bytes)
    }
}
