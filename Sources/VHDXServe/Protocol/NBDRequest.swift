/// A transmission request's 28-byte header (a WRITE's data follows it on the wire).
package struct NBDRequest: Sendable, Equatable {
    package var flags: NBDCommandFlags
    package var type: NBDCommandType
    package var handle: UInt64
    package var offset: UInt64
    package var length: UInt32

    package init(flags: NBDCommandFlags = [], type: NBDCommandType, handle: UInt64, offset: UInt64, length: UInt32) {
        self.flags = flags
        self.type = type
        self.handle = handle
        self.offset = offset
        self.length = length
    }

    /// The request at the start of `raw` (at least 28 bytes), or nil when the magic is wrong.
    package static func decode(_ raw: UnsafeRawBufferPointer) -> NBDRequest? {
        precondition(raw.count >= NBDLimits.requestSize)
        guard WireLoad.u32(raw, 0) == NBDMagic.request else { return nil }
        return NBDRequest(flags: NBDCommandFlags(rawValue: WireLoad.u16(raw, 4)),
                          type: NBDCommandType(rawValue: WireLoad.u16(raw, 6)),
                          handle: WireLoad.u64(raw, 8), offset: WireLoad.u64(raw, 16), length: WireLoad.u32(raw, 24))
    }

    /// The header as a client sends it.
    package func encode() -> [UInt8] {
        var w = WireWriter(capacity: NBDLimits.requestSize)
        w.u32(NBDMagic.request)
        w.u16(flags.rawValue)
        w.u16(type.rawValue)
        w.u64(handle)
        w.u64(offset)
        w.u32(length)
        return w.bytes
    }

    /// Payload bytes that follow the header on the wire.
    package var payloadLength: Int { type == .write ? Int(length) : 0 }
}

/// What a request may do on this export, negotiated during haggling.
package struct NBDExportTerms: Sendable, Equatable {
    package var size: UInt64
    package var readOnly: Bool
    package var minimumBlockSize: UInt32
    /// The largest READ / WRITE payload (and WRITE_ZEROES without FAST_ZERO, per proto.md).
    package var maximumPayload: UInt32
    package var canTrim: Bool
    package var canWriteZeroes: Bool
    package var canFastZero: Bool
    /// A flush on any connection makes every connection's completed writes durable.
    package var canMultiConn: Bool
    package var structuredReplies: Bool
    /// Contexts selected with `NBD_OPT_SET_META_CONTEXT`.
    package var metaContextCount: Int

    package init(size: UInt64, readOnly: Bool, minimumBlockSize: UInt32, maximumPayload: UInt32, canTrim: Bool,
                 canWriteZeroes: Bool, canFastZero: Bool, canMultiConn: Bool, structuredReplies: Bool, metaContextCount: Int) {
        self.size = size
        self.readOnly = readOnly
        self.minimumBlockSize = minimumBlockSize
        self.maximumPayload = maximumPayload
        self.canTrim = canTrim
        self.canWriteZeroes = canWriteZeroes
        self.canFastZero = canFastZero
        self.canMultiConn = canMultiConn
        self.structuredReplies = structuredReplies
        self.metaContextCount = metaContextCount
    }

    /// The transmission flags these terms advertise.
    package var transmissionFlags: NBDTransmissionFlags {
        var f: NBDTransmissionFlags = [.hasFlags, .sendCache]
        if readOnly {
            f.insert(.readOnly)
        } else {
            f.formUnion([.sendFlush, .sendFUA])
            if canTrim { f.insert(.sendTrim) }
            if canWriteZeroes {
                f.insert(.sendWriteZeroes)
                if canFastZero { f.insert(.sendFastZero) }
            }
        }
        if canMultiConn { f.insert(.canMultiConn) }
        // One content chunk per read is all this server sends, so DF costs nothing.
        if structuredReplies { f.insert(.sendDF) }
        return f
    }

    /// Nil when the disk may serve `request`; else the error its reply carries. Checks, in
    /// order: the command is known and allowed (EPERM for a change to a read-only export), its
    /// flags, the range against the export's size (ENOSPC for writes past the end, EINVAL for the
    /// rest, as proto.md's "Error values" says), alignment to the minimum block size, and the
    /// payload cap. `NBD_CMD_DISC` is never checked (it has no reply).
    package func check(_ request: NBDRequest) -> ServeError? {
        let type = request.type
        var allowed: NBDCommandFlags = [.fua]  // FUA is accepted on any command (ignored where nothing is written)
        var writes = false
        var capped = false
        var rangeChecked = true
        switch type {
        case .read:
            capped = true
            if structuredReplies { allowed.insert(.dontFragment) }
        case .write:
            writes = true
            capped = true
        case .flush:
            rangeChecked = false
            guard request.offset == 0, request.length == 0 else { return ServeError(.invalid, "\(type): offset and length must be 0") }
        case .trim:
            writes = true
            guard readOnly || canTrim else { return ServeError(.invalid, "\(type) is not supported by this export") }
        case .cache:
            break
        case .writeZeroes:
            writes = true
            guard readOnly || canWriteZeroes else { return ServeError(.invalid, "\(type) is not supported by this export") }
            allowed.insert(.noHole)
            if canFastZero { allowed.insert(.fastZero) }
            capped = !request.flags.contains(.fastZero)
        case .blockStatus:
            guard structuredReplies, metaContextCount > 0 else {
                return ServeError(.invalid, "\(type) without a metadata context selected (NBD_OPT_SET_META_CONTEXT)")
            }
            allowed.insert(.reqOne)
        default:
            return ServeError(.invalid, "unknown command \(type.rawValue)")
        }
        if writes && readOnly { return ServeError(.notPermitted, "\(type) on a read-only export") }
        let unknown = request.flags.subtracting(allowed)
        if !unknown.isEmpty { return ServeError(.invalid, "\(type): flags 0x\(String(unknown.rawValue, radix: 16)) are not valid for this command") }
        guard rangeChecked else { return nil }
        let end = request.offset.addingReportingOverflow(UInt64(request.length))
        if end.overflow || end.partialValue > size {
            let what = "\(type) of \(request.length) bytes at \(request.offset) is past the end of the \(size)-byte export"
            return ServeError(type == .write || type == .writeZeroes ? .noSpace : .invalid, what)
        }
        let block = UInt64(max(minimumBlockSize, 1))
        if request.offset % block != 0 || UInt64(request.length) % block != 0 {
            // The export's last bytes stay reachable when its size is not a multiple of the block.
            if !(request.offset % block == 0 && end.partialValue == size) {
                return ServeError(.invalid, "\(type) at \(request.offset), \(request.length) bytes: not aligned to the \(block)-byte minimum block size")
            }
        }
        if capped && request.length > maximumPayload {
            return ServeError(.invalid, "\(type) of \(request.length) bytes exceeds the maximum block size (\(maximumPayload))")
        }
        if type == .blockStatus && request.length == 0 {
            return ServeError(.invalid, "\(type) of 0 bytes")
        }
        return nil
    }
}
