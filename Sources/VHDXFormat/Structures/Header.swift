/// VHDX header, [MS-VHDX] 2.2.2; two copies, at 64 KiB and 128 KiB, 4 KiB each.
///
/// | Off | Size | Field          | Rule                                                   |
/// |-----|------|----------------|--------------------------------------------------------|
/// | 0   | 4    | Signature      | "head"                                                 |
/// | 4   | 4    | Checksum       | CRC-32C over all 4096 bytes with this field zero       |
/// | 8   | 8    | SequenceNumber | the valid header with the larger value is current      |
/// | 16  | 16   | FileWriteGuid  | renewed before the first change of a session           |
/// | 32  | 16   | DataWriteGuid  | renewed before the first user-visible change; children link to it |
/// | 48  | 16   | LogGuid        | zero: log empty; else only entries with it are valid   |
/// | 64  | 2    | LogVersion     | 0                                                      |
/// | 66  | 2    | Version        | 1                                                      |
/// | 68  | 4    | LogLength      | multiple of 1 MiB                                      |
/// | 72  | 8    | LogOffset      | multiple of 1 MiB, >= 1 MiB                            |
/// | 80  | 4016 | Reserved       | zero, but covered by the checksum: kept for round trips |
public struct Header: Equatable, Sendable {
    public static let encodedSize = 4096
    public static let checksumOffset = 4

    public var checksum: UInt32
    public var sequenceNumber: UInt64
    public var fileWriteGUID: GUID
    public var dataWriteGUID: GUID
    public var logGUID: GUID
    public var logVersion: UInt16
    public var version: UInt16
    public var logLength: UInt32
    public var logOffset: UInt64
    public var reserved: [UInt8]

    public init(sequenceNumber: UInt64, fileWriteGUID: GUID, dataWriteGUID: GUID, logGUID: GUID,
                logLength: UInt32, logOffset: UInt64) {
        self.checksum = 0
        self.sequenceNumber = sequenceNumber
        self.fileWriteGUID = fileWriteGUID
        self.dataWriteGUID = dataWriteGUID
        self.logGUID = logGUID
        self.logVersion = 0
        self.version = 1
        self.logLength = logLength
        self.logOffset = logOffset
        self.reserved = [UInt8](repeating: 0, count: 4016)
    }

    /// Structural decode: signature and field widths only. Use `validity` for the checksum and
    /// version rules, so a checker can report a bad header instead of stopping.
    public init(parsing r: inout ByteReader) throws(FormatError) {
        try r.expectSignature(Signature.header)
        checksum = try r.readUInt32("checksum")
        sequenceNumber = try r.readUInt64("sequenceNumber")
        fileWriteGUID = try r.readGUID("fileWriteGUID")
        dataWriteGUID = try r.readGUID("dataWriteGUID")
        logGUID = try r.readGUID("logGUID")
        logVersion = try r.readUInt16("logVersion")
        version = try r.readUInt16("version")
        logLength = try r.readUInt32("logLength")
        logOffset = try r.readUInt64("logOffset")
        reserved = try r.readBytes(4016, "reserved")
    }

    /// Encodes with a freshly computed checksum (which is also stored back into `checksum`).
    public mutating func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Header.encodedSize)
        w.write(Signature.header)
        w.write(UInt32(0))
        w.write(sequenceNumber)
        w.write(fileWriteGUID)
        w.write(dataWriteGUID)
        w.write(logGUID)
        w.write(logVersion)
        w.write(version)
        w.write(logLength)
        w.write(logOffset)
        w.write(reserved)
        checksum = CRC32C.checksum(w.bytes)
        w.set(checksum, at: Header.checksumOffset)
        return w.bytes
    }

    /// Decodes one 4 KiB header image and applies the rules that make a header usable: signature,
    /// checksum, Version == 1. Throws the first rule broken.
    public static func decodeValid(_ raw: [UInt8], at fileOffset: UInt64) throws(FormatError) -> Header {
        var r = ByteReader(raw, base: fileOffset, structure: "header")
        let h = try Header(parsing: &r)
        let computed = CRC32C.checksum(raw, zeroingFieldAt: checksumOffset)
        guard computed == h.checksum else {
            throw FormatError(.badChecksum, "header", field: "checksum", at: fileOffset + 4,
                              "stored 0x\(String(h.checksum, radix: 16)), computed 0x\(String(computed, radix: 16))")
        }
        guard h.version == 1 else {
            throw FormatError(.unsupported, "header", field: "version", at: fileOffset + 66,
                              "version \(h.version), only 1 is defined")
        }
        return h
    }

    /// Rules on the log location that hold for any header we act on.
    public func validateLogLocation() throws(FormatError) {
        guard UInt64(logLength).isMultiple(of: Layout.MiB) else {
            throw FormatError(.misaligned, "header", field: "logLength", "log length \(logLength) is not a multiple of 1 MiB")
        }
        guard logOffset.isMultiple(of: Layout.MiB) else {
            throw FormatError(.misaligned, "header", field: "logOffset", "log offset \(logOffset) is not a multiple of 1 MiB")
        }
        guard !logOffset.addingReportingOverflow(UInt64(logLength)).overflow else {
            throw FormatError(.outOfRange, "header", field: "logOffset", "log [\(logOffset), +\(logLength)) runs past the largest file offset")
        }
        if logLength > 0 && logOffset < Layout.headerSectionSize {
            throw FormatError(.outOfRange, "header", field: "logOffset", "log offset \(logOffset) lies in the 1 MiB header section")
        }
        if !logGUID.isZero && logVersion != 0 {
            throw FormatError(.unsupported, "header", field: "logVersion", "log version \(logVersion) with a non-empty log")
        }
        if !logGUID.isZero && logLength == 0 {
            throw FormatError(.inconsistent, "header", field: "logLength", "the log GUID is set but the log has length 0")
        }
    }
}

/// Which header is current, per [MS-VHDX] 2.2.2: the only valid one, or the valid one with the
/// strictly larger sequence number; equal numbers are accepted only for byte-identical headers
/// (Disk2VHD writes two identical headers).
public struct HeaderChoice: Sendable {
    public var current: Header
    /// 0 or 1: the slot the current header came from.
    public var slot: Int
    /// Per slot: nil if valid, otherwise why it is not.
    public var problems: [FormatError?]

    public init(raw: [[UInt8]]) throws(FormatError) {
        var headers: [Header?] = []
        var problems: [FormatError?] = []
        for (i, bytes) in raw.enumerated() {
            do {
                headers.append(try Header.decodeValid(bytes, at: Layout.headerOffsets[i]))
                problems.append(nil)
            } catch {
                headers.append(nil)
                problems.append(error)
            }
        }
        self.problems = problems
        switch (headers[0], headers[1]) {
        case (nil, nil):
            throw FormatError(.inconsistent, "header", at: Layout.headerOffsets[0],
                              "no valid header: header 1: \(problems[0]!.description); header 2: \(problems[1]!.description)")
        case (let h?, nil): current = h; slot = 0
        case (nil, let h?): current = h; slot = 1
        case (let a?, let b?):
            if a.sequenceNumber > b.sequenceNumber { current = a; slot = 0 }
            else if b.sequenceNumber > a.sequenceNumber { current = b; slot = 1 }
            else if raw[0] == raw[1] { current = a; slot = 0 }
            else {
                throw FormatError(.inconsistent, "header", field: "sequenceNumber", at: Layout.headerOffsets[0] + 8,
                                  "both headers are valid with sequence number \(a.sequenceNumber) but differ")
            }
        }
    }
}
