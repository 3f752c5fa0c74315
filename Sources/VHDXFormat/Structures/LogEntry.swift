/// A whole log entry ([MS-VHDX] 2.3.1): descriptor sectors, then one data sector per data
/// descriptor. `decodeValid` applies the checklist of docs/vhdx-format.md §5.3 and yields the updates
/// in the order they must be applied.
public struct LogEntry: Equatable, Sendable {
    public enum Update: Equatable, Sendable {
        /// Write this 4 KiB image at `fileOffset`.
        case data(fileOffset: UInt64, bytes: [UInt8])
        /// Write `length` zero bytes at `fileOffset`.
        case zero(fileOffset: UInt64, length: UInt64)
    }

    public var header: LogEntryHeader
    public var updates: [Update]

    public init(header: LogEntryHeader, updates: [Update]) {
        self.header = header
        self.updates = updates
    }

    /// Checks that do not need the whole entry: signature, length bounds, sequence number,
    /// LogGuid, descriptor room and tail. Lets a scanner reject most positions from 64 bytes.
    public static func precheck(_ h: LogEntryHeader, logGUID: GUID, logLength: UInt64, at: UInt64) throws(FormatError) {
        func bad(_ code: FormatError.Code, _ field: String, _ why: String) -> FormatError {
            FormatError(code, "log entry", field: field, at: at, why)
        }
        guard h.entryLength > 0, h.entryLength % 4096 == 0, UInt64(h.entryLength) <= logLength else {
            throw bad(.outOfRange, "entryLength", "\(h.entryLength) is not a non-zero 4 KiB multiple within the \(logLength)-byte log")
        }
        guard h.sequenceNumber != 0 else { throw bad(.outOfRange, "sequenceNumber", "sequence number 0") }
        guard h.logGUID == logGUID else { throw bad(.inconsistent, "logGUID", "entry belongs to log {\(h.logGUID)}, not {\(logGUID)}") }
        let descSectors = LogEntryHeader.descriptorSectors(count: UInt64(h.descriptorCount))
        guard descSectors * 4096 <= UInt64(h.entryLength) else {
            throw bad(.outOfRange, "descriptorCount", "\(h.descriptorCount) descriptors do not fit in \(h.entryLength) bytes")
        }
        guard h.tail % 4096 == 0, UInt64(h.tail) < logLength else {
            throw bad(.outOfRange, "tail", "tail \(h.tail) is not a 4 KiB multiple inside the log")
        }
    }

    /// Decodes and validates a complete entry (`bytes.count == entryLength`, read circularly by
    /// the caller). `at` is the entry's file offset, for errors.
    public static func decodeValid(_ bytes: [UInt8], logGUID: GUID, logLength: UInt64, at: UInt64) throws(FormatError) -> LogEntry {
        var r = ByteReader(bytes, base: at, structure: "log entry")
        let h = try LogEntryHeader(parsing: &r)
        try precheck(h, logGUID: logGUID, logLength: logLength, at: at)
        guard bytes.count == Int(h.entryLength) else {
            throw FormatError(.truncated, "log entry", field: "entryLength", at: at, "have \(bytes.count) of \(h.entryLength) bytes")
        }
        let computed = CRC32C.checksum(bytes, zeroingFieldAt: 4)
        guard computed == h.checksum else {
            throw FormatError(.badChecksum, "log entry", field: "checksum", at: at + 4,
                              "stored 0x\(String(h.checksum, radix: 16)), computed 0x\(String(computed, radix: 16))")
        }
        var descriptors: [LogDescriptor] = []
        for i in 0..<Int(h.descriptorCount) {
            // Descriptor i sits at 64 + 32i; sector boundaries fall on 32-byte multiples.
            try r.seek(to: 64 + 32 * i, "descriptors[\(i)]")
            let d = try LogDescriptor(parsing: &r)
            let dAt = at + UInt64(64 + 32 * i)
            guard d.sequenceNumber == h.sequenceNumber else {
                throw FormatError(.inconsistent, "log descriptor", field: "sequenceNumber", at: dAt,
                                  "descriptor \(i) has sequence \(d.sequenceNumber), entry has \(h.sequenceNumber)")
            }
            guard d.fileOffset % 4096 == 0 else {
                throw FormatError(.misaligned, "log descriptor", field: "fileOffset", at: dAt, "target \(d.fileOffset) is not 4 KiB-aligned")
            }
            if case let .zero(_, length, _, _) = d, length % 4096 != 0 {
                throw FormatError(.misaligned, "log descriptor", field: "zeroLength", at: dAt, "zero length \(length) is not a 4 KiB multiple")
            }
            descriptors.append(d)
        }
        let dataCount = descriptors.filter { if case .data = $0 { true } else { false } }.count
        let descSectors = Int(LogEntryHeader.descriptorSectors(count: UInt64(h.descriptorCount)))
        guard (descSectors + dataCount) * 4096 == Int(h.entryLength) else {
            throw FormatError(.inconsistent, "log entry", field: "entryLength", at: at,
                              "\(h.entryLength) bytes, but \(descSectors) descriptor and \(dataCount) data sectors need \((descSectors + dataCount) * 4096)")
        }
        var updates: [Update] = []
        var dataIndex = 0
        for d in descriptors {
            switch d {
            case let .zero(_, length, fileOffset, _):
                updates.append(.zero(fileOffset: fileOffset, length: length))
            case let .data(trailing, leading, fileOffset, _):
                let sectorStart = (descSectors + dataIndex) * 4096
                try r.seek(to: sectorStart, "dataSectors[\(dataIndex)]")
                let s = try LogDataSector(parsing: &r)
                guard s.sequenceNumber == h.sequenceNumber else {
                    throw FormatError(.inconsistent, "log data sector", field: "sequence", at: at + UInt64(sectorStart),
                                      "data sector \(dataIndex) has sequence \(s.sequenceNumber), entry has \(h.sequenceNumber)")
                }
                updates.append(.data(fileOffset: fileOffset, bytes: s.update(leadingBytes: leading, trailingBytes: trailing)))
                dataIndex += 1
            }
        }
        return LogEntry(header: h, updates: updates)
    }

    /// Encodes an entry with the given updates (each data update exactly 4096 bytes), computing
    /// EntryLength, descriptor count and checksum.
    public static func encode(updates: [Update], sequenceNumber: UInt64, tail: UInt32, logGUID: GUID,
                              flushedFileOffset: UInt64, lastFileOffset: UInt64) -> [UInt8] {
        let descSectors = Int(LogEntryHeader.descriptorSectors(count: UInt64(updates.count)))
        let dataUpdates = updates.compactMap { u -> (UInt64, [UInt8])? in
            if case let .data(o, b) = u { return (o, b) } else { return nil }
        }
        let length = (descSectors + dataUpdates.count) * 4096
        var h = LogEntryHeader(entryLength: UInt32(length), tail: tail, sequenceNumber: sequenceNumber,
                               descriptorCount: UInt32(updates.count), logGUID: logGUID,
                               flushedFileOffset: flushedFileOffset, lastFileOffset: lastFileOffset)
        var w = ByteWriter(capacity: length)
        h.encode(into: &w)
        for u in updates {
            switch u {
            case let .zero(o, l):
                LogDescriptor.zero(reserved: 0, length: l, fileOffset: o, sequenceNumber: sequenceNumber).encode(into: &w)
            case let .data(o, b):
                let leading = loadUInt64LE(b, at: 0) ?? 0
                let trailing = UInt32(b[4092]) | UInt32(b[4093]) << 8 | UInt32(b[4094]) << 16 | UInt32(b[4095]) << 24
                LogDescriptor.data(trailingBytes: trailing, leadingBytes: leading, fileOffset: o, sequenceNumber: sequenceNumber).encode(into: &w)
            }
        }
        w.pad(to: descSectors * 4096)
        for (_, b) in dataUpdates { LogDataSector(sequenceNumber: sequenceNumber, update: b).encode(into: &w) }
        h.checksum = CRC32C.checksum(w.bytes)
        w.set(h.checksum, at: 4)
        return w.bytes
    }
}
