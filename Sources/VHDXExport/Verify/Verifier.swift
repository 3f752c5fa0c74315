#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX
import VHDXChangeTracking
import VHDXSets

/// What a verify found.
public struct VerifyResult: Sendable {
    /// nil when the image is exactly what the exports describe.
    public var firstDifference: UInt64?
    /// The export the image was compared with (the last one's header).
    public var holds: StreamHeader
    public var comparedBytes: UInt64 = 0
    public var seconds: Double = 0
    public var identical: Bool { firstDifference == nil }
}

/// `vhdx verify`: whether an image is byte for byte what a full export and its incrementals
/// (streams), or an exported chain's top, describe. Every byte of the image is compared with
/// the last export that wrote it (data, or zeros), so the cost is one read of the image and
/// of the exports; the incrementals are read twice (first to learn what they cover), the full
/// export once. A damaged input wins over a difference (`ExportError.damaged`): a verdict
/// from damaged input would not mean anything.
public enum Verifier {
    public static func verify(_ imagePath: String, against inputs: [String], progress: Exporter.Progress? = nil) throws(ExportError) -> VerifyResult {
        try ExportError.boundary { try verifying(imagePath, against: inputs, progress: progress) }
    }

    static func verifying(_ imagePath: String, against inputs: [String], progress: Exporter.Progress?) throws -> VerifyResult {
        let started = Clock.now()
        guard let first = inputs.first else { throw ExportError(.invalid, "no export given") }
        let (image, set) = try openImage(imagePath)
        // A set's lock is held until the comparison is done.
        defer { withExtendedLifetime(set) {} }
        if try OriginStore.looksLikeVHDX(first) {
            guard inputs.count == 1 else { throw ExportError(.invalid, "an exported chain is verified against its top image alone", path: first) }
            let top = try VHDXFile.open(path: first)
            let holds = try ChainOrigin.verify(top)
            let r = try ImageComparer(image, try DiskImage(path: first), strict: false).compare()
            return VerifyResult(firstDifference: r.firstDifference, holds: holds, comparedBytes: r.comparedBytes, seconds: Clock.now() - started)
        }
        if inputs.dropFirst().contains("-") { throw ExportError(.invalid, "only the full export can come from standard input (the incrementals are read twice)") }
        let readers = try StreamChain.open(inputs)
        let headers = readers.map(\.header)
        let final = headers.last!
        // Pass 1: what each incremental covers (and that it is sound), so earlier bytes it replaces are not compared.
        var covers: [[ChangedRange]] = Array(repeating: [], count: inputs.count)
        for k in 1..<max(1, inputs.count) {
            // Extents come in order: touching ones are joined as they come, so the list stays as
            // small as the ranges are scattered, however many records the stream has.
            try StreamDecoder.forEach(readers[k]) { e in
                if let last = covers[k].last, last.end == e.offset { covers[k][covers[k].count - 1].length += e.length }
                else { covers[k].append(ChangedRange(offset: e.offset, length: e.length)) }
            }
            if headers[k].virtualSize < headers[k - 1].virtualSize {
                covers[k].append(ChangedRange(offset: headers[k].virtualSize, length: headers[k - 1].virtualSize - headers[k].virtualSize))
            }
            covers[k] = ChangedRange.union([covers[k]])
        }
        var later: [[ChangedRange]] = Array(repeating: [], count: inputs.count)
        if inputs.count > 1 {
            for k in stride(from: inputs.count - 2, through: 0, by: -1) { later[k] = ChangedRange.union([later[k + 1], covers[k + 1]]) }
        }
        var result = VerifyResult(firstDifference: image.virtualSize == final.virtualSize ? nil : min(image.virtualSize, final.virtualSize), holds: final)
        let comparer = ExtentComparer(image: image, size: min(image.virtualSize, final.virtualSize))
        for k in 0..<inputs.count {
            let reader = k == 0 ? readers[0] : try StreamReader(path: inputs[k])
            if k > 0, headers[k].virtualSize < headers[k - 1].virtualSize {
                let cut = ChangedRange(offset: headers[k].virtualSize, length: headers[k - 1].virtualSize - headers[k].virtualSize)
                try comparer.compare(cut, data: nil, except: later[k], into: &result)
            }
            try StreamDecoder.forEach(reader) { e in
                try comparer.compare(ChangedRange(offset: e.offset, length: e.length), data: e.kind == .data ? e.data : nil, except: later[k], into: &result)
                progress?(comparer.compared, final.virtualSize)
            }
        }
        result.comparedBytes = comparer.compared
        result.seconds = Clock.now() - started
        return result
    }

    /// The disk to compare: an image (a VHDX through its chain, or raw), or a VHD Set's active
    /// leaf through its chain, checked to be the chain the set describes (the set is returned:
    /// its shared lock keeps writers out while it lives).
    static func openImage(_ path: String) throws(VHDXError) -> (DiskImage, VHDSet?) {
        guard try VHDSet.looksLikeSet(path) else { return (try DiskImage(path: path), nil) }
        let set = try VHDSet.open(path: path)
        _ = try set.openLeaf()
        return (try DiskImage(path: set.leafPath), set)
    }
}

/// Compares extents of an export with the image, skipping what later exports replace.
final class ExtentComparer {
    let image: DiskImage
    let size: UInt64
    private(set) var compared: UInt64 = 0
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)

    init(image: DiskImage, size: UInt64) {
        self.image = image
        self.size = size
    }

    /// `range` should read as `data` (zeros when nil), except where `except` (sorted) covers it.
    func compare(_ range: ChangedRange, data: [UInt8]?, except: [ChangedRange], into result: inout VerifyResult) throws {
        for piece in subtract(range, except) where piece.offset < size {
            let end = min(piece.end, size)
            var at = piece.offset
            while at < end {
                // Zeros expected where the image holds nothing: equal without reading (a sparse
                // 64 TiB disk is not read end to end).
                if data == nil {
                    let run = try image.allocationRun(at: at)
                    if !run.allocated {
                        let skip = min(run.range.upperBound, end)
                        compared += skip - at
                        at = skip
                        continue
                    }
                }
                let n = Int(min(UInt64(buffer.count), end - at))
                try typed { try buffer.withUnsafeMutableBytes { b in try image.read(into: UnsafeMutableRawBufferPointer(rebasing: b[0..<n]), at: at) } }
                let base = Int(at - range.offset)
                let same: Bool = buffer.withUnsafeBytes { b in
                    let got = UnsafeRawBufferPointer(rebasing: b[0..<n])
                    guard let data else { return isAllZero(got) }
                    return data.withUnsafeBytes { d in memcmp(got.baseAddress!, d.baseAddress! + base, n) == 0 }
                }
                if !same, let i = (0..<n).first(where: { buffer[$0] != (data?[base + $0] ?? 0) }) {
                    let off = at + UInt64(i)
                    if result.firstDifference.map({ off < $0 }) ?? true { result.firstDifference = off }
                }
                at += UInt64(n)
                compared += UInt64(n)
            }
        }
    }

    /// The parts of `r` outside the sorted, disjoint `ranges`.
    func subtract(_ r: ChangedRange, _ ranges: [ChangedRange]) -> [ChangedRange] {
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].end <= r.offset { lo = mid + 1 } else { hi = mid }
        }
        var out: [ChangedRange] = []
        var at = r.offset
        for x in ranges[lo...] {
            if x.offset >= r.end { break }
            if x.offset > at { out.append(ChangedRange(offset: at, length: x.offset - at)) }
            at = max(at, x.end)
        }
        if at < r.end { out.append(ChangedRange(offset: at, length: r.end - at)) }
        return out
    }
}
