/// The server's side of option haggling: the greeting, option replies, and the reply to
/// `NBD_OPT_EXPORT_NAME`.
package enum NBDHandshake {
    /// NBDMAGIC, IHAVEOPT, handshake flags.
    package static func greeting(_ flags: NBDHandshakeFlags) -> [UInt8] {
        var w = WireWriter(capacity: NBDLimits.greetingSize)
        w.u64(NBDMagic.initPassword)
        w.u64(NBDMagic.option)
        w.u16(flags.rawValue)
        return w.bytes
    }

    /// The reply to `NBD_OPT_EXPORT_NAME`: size, transmission flags, and 124 zeros unless the
    /// client set NO_ZEROES.
    package static func exportNameReply(size: UInt64, flags: NBDTransmissionFlags, noZeroes: Bool) -> [UInt8] {
        var w = WireWriter(capacity: 134)
        w.u64(size)
        w.u16(flags.rawValue)
        if !noZeroes { w.bytes(repeatElement(0, count: NBDLimits.exportNameZeroPadding)) }
        return w.bytes
    }
}

/// One option reply: magic, the option it answers, its type, its data.
package struct NBDOptionReply: Sendable, Equatable {
    package var option: NBDOptionType
    package var type: NBDOptionReplyType
    package var data: [UInt8]

    package init(option: NBDOptionType, type: NBDOptionReplyType, data: [UInt8] = []) {
        self.option = option
        self.type = type
        self.data = data
    }

    package func encode() -> [UInt8] {
        var w = WireWriter(capacity: NBDLimits.optionReplyHeaderSize + data.count)
        w.u64(NBDMagic.optionReply)
        w.u32(option.rawValue)
        w.u32(type.rawValue)
        w.u32(UInt32(data.count))
        w.bytes(data)
        return w.bytes
    }

    package static func ack(_ option: NBDOptionType) -> NBDOptionReply {
        NBDOptionReply(option: option, type: .ack)
    }

    /// An error reply with a message for the user.
    package static func error(_ option: NBDOptionType, _ type: NBDOptionReplyType, _ message: String) -> NBDOptionReply {
        precondition(type.isError)
        return NBDOptionReply(option: option, type: type, data: WireString.encode(message))
    }

    /// `NBD_REP_SERVER`: one export of `NBD_OPT_LIST`.
    package static func server(name: String, description: String) -> NBDOptionReply {
        var w = WireWriter()
        let n = WireString.encode(name)
        w.u32(UInt32(n.count))
        w.bytes(n)
        w.string(description)
        return NBDOptionReply(option: .list, type: .server, data: w.bytes)
    }

    /// `NBD_REP_INFO` / `NBD_INFO_EXPORT`.
    package static func infoExport(_ option: NBDOptionType, size: UInt64, flags: NBDTransmissionFlags) -> NBDOptionReply {
        var w = WireWriter(capacity: 12)
        w.u16(NBDInfoType.export.rawValue)
        w.u64(size)
        w.u16(flags.rawValue)
        return NBDOptionReply(option: option, type: .info, data: w.bytes)
    }

    /// `NBD_REP_INFO` / `NBD_INFO_NAME` or `NBD_INFO_DESCRIPTION`.
    package static func infoString(_ option: NBDOptionType, _ type: NBDInfoType, _ value: String) -> NBDOptionReply {
        var w = WireWriter()
        w.u16(type.rawValue)
        w.string(value)
        return NBDOptionReply(option: option, type: .info, data: w.bytes)
    }

    /// `NBD_REP_INFO` / `NBD_INFO_BLOCK_SIZE`.
    package static func infoBlockSize(_ option: NBDOptionType, minimum: UInt32, preferred: UInt32, maximum: UInt32) -> NBDOptionReply {
        var w = WireWriter(capacity: 14)
        w.u16(NBDInfoType.blockSize.rawValue)
        w.u32(minimum)
        w.u32(preferred)
        w.u32(maximum)
        return NBDOptionReply(option: option, type: .info, data: w.bytes)
    }

    /// `NBD_REP_META_CONTEXT`: a context and its id (0 in a list).
    package static func metaContext(_ option: NBDOptionType, id: UInt32, name: String) -> NBDOptionReply {
        var w = WireWriter()
        w.u32(id)
        w.string(name)
        return NBDOptionReply(option: option, type: .metaContext, data: w.bytes)
    }

    /// The header at the start of `raw` (at least 20 bytes): option, type, data length; nil
    /// when the magic is wrong. The client's side, for tests and probes.
    package static func decodeHeader(_ raw: UnsafeRawBufferPointer) -> (option: NBDOptionType, type: NBDOptionReplyType, length: UInt32)? {
        precondition(raw.count >= NBDLimits.optionReplyHeaderSize)
        guard WireLoad.u64(raw, 0) == NBDMagic.optionReply else { return nil }
        return (NBDOptionType(rawValue: WireLoad.u32(raw, 8)), NBDOptionReplyType(rawValue: WireLoad.u32(raw, 12)), WireLoad.u32(raw, 16))
    }
}
