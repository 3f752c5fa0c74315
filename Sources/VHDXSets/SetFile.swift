import VHDX
import VHDXFormat

/// The two copies of a set file on storage. Reading takes the valid copy with the higher
/// sequence number (a damaged one becomes a finding); writing puts the next sequence into the
/// other slot and flushes, so a torn write only ever damages the copy that was not current.
package final class SetFile {
    package let storage: Storage
    package private(set) var record: SetRecord
    /// The slot (0 = A, 1 = B) holding `record`.
    package private(set) var currentSlot: Int
    /// What is wrong with the other copy, for `check` (nil: it is fine or was never written).
    package private(set) var otherCopyProblem: String?

    package init(storage: Storage) throws(VHDXError) {
        self.storage = storage
        let size = try storage.size()
        var copies: [Result<SetRecord, FormatError>?] = []
        var heads: [[UInt8]] = []
        for offset in SetFileLayout.slotOffsets {
            guard offset + 28 <= size else { copies.append(nil); heads.append([]); continue }
            let head = try storage.read(count: 28, at: offset)
            heads.append(head)
            if head.prefix(8).allSatisfy({ $0 == 0 }) { copies.append(nil); continue }
            copies.append(try SetFile.readCopy(storage, at: offset, size: size, head: head))
        }
        let valid = copies.enumerated().compactMap { (i, c) -> (Int, SetRecord)? in
            if case .success(let r)? = c { return (i, r) } else { return nil }
        }
        guard let best = valid.max(by: { $0.1.sequence < $1.1.sequence }) else {
            throw SetFile.unreadable(storage.name, size: size, heads: heads, copies: copies)
        }
        record = best.1
        currentSlot = best.0
        let other = 1 - best.0
        switch copies[other] {
        case .failure(let e)?: otherCopyProblem = "copy \(other == 0 ? "A" : "B") is damaged (\(e.description)); copy \(best.0 == 0 ? "A" : "B") (sequence \(best.1.sequence)) is used, and the next update rewrites the damaged one"
        case nil where best.1.sequence >= 2:
            otherCopyProblem = "copy \(other == 0 ? "A" : "B") is missing (zeroed or cut off) although both were written; the next update rewrites it"
        case .success(let r)? where r.sequence == best.1.sequence && r != best.1:
            otherCopyProblem = "both copies have sequence \(r.sequence) but differ; copy \(best.0 == 0 ? "A" : "B") is used"
        default: otherCopyProblem = nil
        }
    }

    /// One copy, decoded: a failure when its bytes are damaged or cut off. A read that fails
    /// (EIO, EACCES) throws instead: a device that cannot be read now says nothing about the
    /// copy, and taking the other (older) copy as current would make the next update overwrite
    /// the newer one.
    static func readCopy(_ storage: Storage, at offset: UInt64, size: UInt64, head: [UInt8]) throws(VHDXError) -> Result<SetRecord, FormatError> {
        let length: Int
        do throws(FormatError) {
            length = try SetRecordCodec.statedLength(head, at: offset)
        } catch { return .failure(error) }
        guard offset + UInt64(length) <= size else {
            return .failure(FormatError(.truncated, SetRecordCodec.structure, at: offset, "the copy states \(length) bytes, the file ends \(size - offset) bytes after its start"))
        }
        let bytes = try storage.read(count: length, at: offset)
        do throws(FormatError) {
            return .success(try SetRecordCodec.decode(bytes, at: offset))
        } catch { return .failure(error) }
    }

    /// Neither copy is valid: say what the file is — empty, a VHDX disk, a set of ours damaged
    /// beyond use, or content we do not recognise. Hyper-V's `.vhds` layout is unpublished and has
    /// no documented signature, so one of its sets cannot be told from any other bytes: it is
    /// named only as a possibility, never asserted.
    static func unreadable(_ path: String, size: UInt64, heads: [[UInt8]], copies: [Result<SetRecord, FormatError>?]) -> VHDXError {
        if size == 0 {
            return VHDXError(.invalidArgument, "not a VHD Set: the file is empty", path: path)
        }
        let first = heads.first ?? []
        if first.starts(with: SetFileLayout.vhdxSignature) {
            return VHDXError(.invalidArgument, "this is a VHDX disk, not a VHD Set (open it directly, or create a set from it)", path: path)
        }
        let ours = heads.contains { $0.starts(with: SetFileLayout.signature) }
        if ours {
            let why = copies.enumerated().map { (i, c) -> String in
                let name = i == 0 ? "A" : "B"
                switch c {
                case .failure(let e)?: return "copy \(name): \(e.description)"
                default: return "copy \(name): missing"
                }
            }.joined(separator: "; ")
            return VHDXError(.corrupt, "both copies of the set file are damaged (\(why)); nothing was written", path: path)
        }
        return VHDXError(.unsupported, "not a VHD Set: unrecognised content (it starts neither with our sets' signature \"swvhdset\" nor with a VHDX disk's). A set written by Hyper-V cannot be recognised: Microsoft has not published the .vhds layout, so such a set is never read or written here; if this is one, its checkpoint files are ordinary VHDX: open the .avhdx chain beside it directly", path: path)
    }

    /// Writes `next` (its sequence set here) into the slot that is not current, flushed.
    package func write(_ next: SetRecord) throws(VHDXError) {
        var r = next
        r.sequence = record.sequence + 1
        let bytes = SetRecordCodec.encode(r)
        guard bytes.count <= SetFileLayout.slotSize else {
            throw VHDXError(.tooLarge, "the set's record needs \(bytes.count) bytes, more than a copy holds (\(SetFileLayout.slotSize))", path: storage.name)
        }
        let slot = 1 - currentSlot
        try storage.write(bytes, at: SetFileLayout.slotOffsets[slot])
        try storage.synchronize()
        record = r
        currentSlot = slot
        otherCopyProblem = nil
    }

    /// The bytes of a new set file: copy A holds `record` at sequence 1, copy B is empty.
    static func initialBytes(_ record: SetRecord) -> [UInt8] {
        var r = record
        r.sequence = 1
        return SetRecordCodec.encode(r)
    }

    /// Both copies rewritten with the current record, and the file cut to its end (optimize).
    package func compact() throws(VHDXError) {
        try write(record)
        try write(record)
        let end = SetFileLayout.slotOffsets[1] + UInt64(SetRecordCodec.encode(record).count)
        if try storage.size() > end {
            try storage.resize(to: end)
            try storage.synchronize()
        }
    }
}
