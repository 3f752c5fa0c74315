// libFuzzer entry point for the export stream reader (Sources/VHDXExport/Stream, Format): the
// record header, stream header and trailer decoders on the input's own bytes, then the input as a
// whole stream through StreamReader (a memfd, so no disk), every record's body checked as restore
// checks it (DecodedExtent.decode: CRC-32C, inflation to its exact length, block SHA-256s; on
// this thread, in order, where StreamDecoder spreads the same calls over workers) until the first
// damaged record, as restore stops there.
//
// Every input is run twice when it differs after a fix-up: once as given, and once with every
// record's body and header CRC-32C, every stored block digest (after inflation) and the trailer's
// counts and SHA-256 recomputed, so mutations reach the checks behind the checksums. The fix-up
// is deterministic, so a saved reproducer replays the same way.

internal import Crypto
@testable import VHDXExport
@testable import VHDXFormat

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The most records looked at per run (the stream may say it has more).
private let maxRecords = 4096

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStream(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = inputBytes(data, size)
    decodePieces(bytes)
    readWhole(bytes)
    if let fixed = StreamFixup.fixed(bytes) {
        say("stream with checksums and digests fixed up")
        readWhole(fixed)
    }
    return 0
}

/// The three fixed-size decoders on the bytes where a stream has them.
private func decodePieces(_ b: [UInt8]) {
    if b.count >= RecordHeader.size {
        if let h = try? RecordHeader.decode(Array(b[0..<RecordHeader.size]), at: 0) {
            guard (try? RecordHeader.decode(h.encode(), at: 0)) == h else { fatalError("record header does not round-trip") }
        }
    }
    if b.count >= RecordHeader.size + StreamHeader.bodySize {
        let body = Array(b[RecordHeader.size..<RecordHeader.size + StreamHeader.bodySize])
        if let h = try? StreamHeader.decode(body, at: 64) {
            guard (try? StreamHeader.decode(h.encode(), at: 0)) == h else { fatalError("stream header does not round-trip") }
        }
    }
    if b.count >= StreamTrailer.bodySize {
        if let t = try? StreamTrailer.decode(Array(b[(b.count - StreamTrailer.bodySize)...]), at: 0) {
            guard (try? StreamTrailer.decode(t.encode(), at: 0)) == t else { fatalError("stream trailer does not round-trip") }
        }
    }
}

/// The stream read front to back as restore reads it.
private func readWhole(_ bytes: [UInt8]) {
    let file = MemFile(bytes)
    do {
        let reader = try StreamReader(path: file.path)
        say("header: \(reader.header.isIncremental ? "incremental" : "full"), \(reader.header.virtualSize) bytes, digest block \(reader.header.digestBlock)")
        var n = 0
        while n < maxRecords, let r = try reader.next() {
            n += 1
            switch DecodedExtent.decode(r, digestBlock: reader.header.digestBlock, name: reader.name) {
            case .success(let e):
                guard e.kind != .data || e.data.count == Int(e.length) else { fatalError("decoded extent of \(e.data.count) bytes, header says \(e.length)") }
            case .failure(let error):
                say("record \(n): \(error)")
                return
            }
        }
        say("\(n) records, trailer \(reader.trailer != nil ? "checked" : "not reached")")
    } catch {
        say("stream: \(error)")
    }
}

/// Recomputes what a stream's integrity checks compare, so mutations get past them.
enum StreamFixup {
    static func fixed(_ input: [UInt8]) -> [UInt8]? {
        var b = input
        var pos = 0
        var header: StreamHeader?
        var digest = SHA256()
        var counts = StreamTrailer()
        var records: UInt64 = 0
        while pos + RecordHeader.size <= b.count, Array(b[pos..<pos + 8]) == RecordHeader.magic {
            let kind = b[pos + 32]
            let bodyLength = Int(load32(b, pos + 36))
            let bodyStart = pos + RecordHeader.size
            guard bodyLength <= b.count - bodyStart else { fixHeader(&b, pos); break }
            let length = load64(b, pos + 48)
            if kind == RecordHeader.Kind.trailer.rawValue, bodyLength == StreamTrailer.bodySize {
                var t = counts
                t.records = records
                t.digest = Array(digest.finalize())
                b.replaceSubrange(bodyStart..<bodyStart + bodyLength, with: t.encode())
            }
            if kind == RecordHeader.Kind.data.rawValue, let h = header {
                fixBlockDigests(&b, bodyStart, bodyLength, length: length, deflated: b[pos + 33] & 1 != 0, digestBlock: h.digestBlock)
            }
            storeCRC(&b, pos + 56, CRC32C.checksum(b[bodyStart..<bodyStart + bodyLength]))
            fixHeader(&b, pos)
            if kind == RecordHeader.Kind.header.rawValue, header == nil {
                header = try? StreamHeader.decode(Array(b[bodyStart..<bodyStart + bodyLength]), at: 0)
                digest.update(data: b[pos..<bodyStart + bodyLength])
            } else if kind == RecordHeader.Kind.data.rawValue || kind == RecordHeader.Kind.zero.rawValue {
                let digestBytes = kind == RecordHeader.Kind.data.rawValue && length <= 64 << 20 ? header.map { Int(min(UInt64(bodyLength), (length + $0.digestBlock - 1) / $0.digestBlock * 32)) } ?? 0 : 0
                digest.update(data: b[pos..<bodyStart + digestBytes])
                counts.storedBytes += UInt64(RecordHeader.size + bodyLength)
                if kind == RecordHeader.Kind.data.rawValue { counts.dataRecords += 1; counts.dataBytes &+= length } else { counts.zeroRecords += 1; counts.zeroBytes &+= length }
            }
            if kind == RecordHeader.Kind.header.rawValue { counts.storedBytes += UInt64(RecordHeader.size + bodyLength) }
            records += 1
            pos = bodyStart + bodyLength
        }
        return same(b, input) ? nil : b
    }

    /// The record header's own CRC-32C (bytes 60-63 over 0-59).
    private static func fixHeader(_ b: inout [UInt8], _ pos: Int) {
        storeCRC(&b, pos + 60, CRC32C.checksum(b[pos..<pos + 60]))
    }

    /// A data record's block SHA-256s, from its payload as it inflates (or as stored).
    private static func fixBlockDigests(_ b: inout [UInt8], _ start: Int, _ bodyLength: Int, length: UInt64, deflated: Bool, digestBlock: UInt64) {
        guard length > 0, length <= 64 << 20 else { return }
        let d = Int(digestBlock)
        let digestBytes = Int((length + digestBlock - 1) / digestBlock) * 32
        guard digestBytes <= bodyLength else { return }
        let payload = Array(b[start + digestBytes..<start + bodyLength])
        var data: [UInt8]
        if deflated {
            data = [UInt8](repeating: 0, count: Int(length))
            let ok = payload.withUnsafeBytes { p in data.withUnsafeMutableBytes { o in Deflate.decompress(p, into: o) } }
            guard ok else { return }
        } else {
            guard payload.count == Int(length) else { return }
            data = payload
        }
        for i in 0..<digestBytes / 32 {
            let h = SHA256.hash(data: data[i * d..<min((i + 1) * d, data.count)])
            b.replaceSubrange(start + i * 32..<start + (i + 1) * 32, with: Array(h))
        }
    }

    private static func load32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }

    private static func load64(_ b: [UInt8], _ i: Int) -> UInt64 {
        UInt64(load32(b, i)) | UInt64(load32(b, i + 4)) << 32
    }
}
