/// The NBD protocol's numbers (NetworkBlockDevice/nbd `doc/proto.md`, "Values"): magics,
/// flags, option, reply, info and command types. Values the wire carries that we do not know
/// stay representable (raw structs, not closed enums), so decoding never traps on them.

/// The magic numbers that frame every message.
package enum NBDMagic {
    /// "NBDMAGIC": the first 8 bytes the server sends.
    package static let initPassword: UInt64 = 0x4E42_444D_4147_4943
    /// "IHAVEOPT": after NBDMAGIC in the greeting, and before every option the client sends.
    package static let option: UInt64 = 0x4948_4156_454F_5054
    /// Before every option reply.
    package static let optionReply: UInt64 = 0x0003_E889_0455_65A9
    /// Before every transmission request.
    package static let request: UInt32 = 0x2560_9513
    package static let simpleReply: UInt32 = 0x6744_6698
    package static let structuredReply: UInt32 = 0x668E_33EF
}

/// The 16 handshake flags the server sends in its greeting.
package struct NBDHandshakeFlags: OptionSet, Sendable, Hashable {
    package var rawValue: UInt16
    package init(rawValue: UInt16) { self.rawValue = rawValue }
    package static let fixedNewstyle = NBDHandshakeFlags(rawValue: 1 << 0)
    package static let noZeroes = NBDHandshakeFlags(rawValue: 1 << 1)
}

/// The 32 flags the client answers the greeting with. Any other bit is a protocol violation
/// (the server drops the connection).
package struct NBDClientFlags: OptionSet, Sendable, Hashable {
    package var rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }
    package static let fixedNewstyle = NBDClientFlags(rawValue: 1 << 0)
    package static let noZeroes = NBDClientFlags(rawValue: 1 << 1)
    package static let known: NBDClientFlags = [.fixedNewstyle, .noZeroes]
}

/// The export's 16 transmission flags (`NBD_INFO_EXPORT`, `NBD_OPT_EXPORT_NAME`'s reply).
package struct NBDTransmissionFlags: OptionSet, Sendable, Hashable {
    package var rawValue: UInt16
    package init(rawValue: UInt16) { self.rawValue = rawValue }
    package static let hasFlags = NBDTransmissionFlags(rawValue: 1 << 0)
    package static let readOnly = NBDTransmissionFlags(rawValue: 1 << 1)
    package static let sendFlush = NBDTransmissionFlags(rawValue: 1 << 2)
    package static let sendFUA = NBDTransmissionFlags(rawValue: 1 << 3)
    package static let rotational = NBDTransmissionFlags(rawValue: 1 << 4)
    package static let sendTrim = NBDTransmissionFlags(rawValue: 1 << 5)
    package static let sendWriteZeroes = NBDTransmissionFlags(rawValue: 1 << 6)
    package static let sendDF = NBDTransmissionFlags(rawValue: 1 << 7)
    package static let canMultiConn = NBDTransmissionFlags(rawValue: 1 << 8)
    package static let sendResize = NBDTransmissionFlags(rawValue: 1 << 9)
    package static let sendCache = NBDTransmissionFlags(rawValue: 1 << 10)
    package static let sendFastZero = NBDTransmissionFlags(rawValue: 1 << 11)
}

/// An option the client sends during haggling.
package struct NBDOptionType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    package var rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }
    package static let exportName = NBDOptionType(rawValue: 1)
    package static let abort = NBDOptionType(rawValue: 2)
    package static let list = NBDOptionType(rawValue: 3)
    package static let peekExport = NBDOptionType(rawValue: 4)
    package static let startTLS = NBDOptionType(rawValue: 5)
    package static let info = NBDOptionType(rawValue: 6)
    package static let go = NBDOptionType(rawValue: 7)
    package static let structuredReply = NBDOptionType(rawValue: 8)
    package static let listMetaContext = NBDOptionType(rawValue: 9)
    package static let setMetaContext = NBDOptionType(rawValue: 10)
    package static let extendedHeaders = NBDOptionType(rawValue: 11)

    package var description: String {
        switch self {
        case .exportName: "NBD_OPT_EXPORT_NAME"
        case .abort: "NBD_OPT_ABORT"
        case .list: "NBD_OPT_LIST"
        case .peekExport: "NBD_OPT_PEEK_EXPORT"
        case .startTLS: "NBD_OPT_STARTTLS"
        case .info: "NBD_OPT_INFO"
        case .go: "NBD_OPT_GO"
        case .structuredReply: "NBD_OPT_STRUCTURED_REPLY"
        case .listMetaContext: "NBD_OPT_LIST_META_CONTEXT"
        case .setMetaContext: "NBD_OPT_SET_META_CONTEXT"
        case .extendedHeaders: "NBD_OPT_EXTENDED_HEADERS"
        default: "option \(rawValue)"
        }
    }
}

/// The type of an option reply; errors have bit 31 set.
package struct NBDOptionReplyType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    package var rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }
    package static let ack = NBDOptionReplyType(rawValue: 1)
    package static let server = NBDOptionReplyType(rawValue: 2)
    package static let info = NBDOptionReplyType(rawValue: 3)
    package static let metaContext = NBDOptionReplyType(rawValue: 4)
    package static let errUnsup = NBDOptionReplyType(rawValue: 1 << 31 | 1)
    package static let errPolicy = NBDOptionReplyType(rawValue: 1 << 31 | 2)
    package static let errInvalid = NBDOptionReplyType(rawValue: 1 << 31 | 3)
    package static let errPlatform = NBDOptionReplyType(rawValue: 1 << 31 | 4)
    package static let errTLSRequired = NBDOptionReplyType(rawValue: 1 << 31 | 5)
    package static let errUnknown = NBDOptionReplyType(rawValue: 1 << 31 | 6)
    package static let errShutdown = NBDOptionReplyType(rawValue: 1 << 31 | 7)
    package static let errBlockSizeRequired = NBDOptionReplyType(rawValue: 1 << 31 | 8)
    package static let errTooBig = NBDOptionReplyType(rawValue: 1 << 31 | 9)

    package var isError: Bool { rawValue & (1 << 31) != 0 }

    package var description: String {
        switch self {
        case .ack: "NBD_REP_ACK"
        case .server: "NBD_REP_SERVER"
        case .info: "NBD_REP_INFO"
        case .metaContext: "NBD_REP_META_CONTEXT"
        case .errUnsup: "NBD_REP_ERR_UNSUP"
        case .errPolicy: "NBD_REP_ERR_POLICY"
        case .errInvalid: "NBD_REP_ERR_INVALID"
        case .errPlatform: "NBD_REP_ERR_PLATFORM"
        case .errTLSRequired: "NBD_REP_ERR_TLS_REQD"
        case .errUnknown: "NBD_REP_ERR_UNKNOWN"
        case .errShutdown: "NBD_REP_ERR_SHUTDOWN"
        case .errBlockSizeRequired: "NBD_REP_ERR_BLOCK_SIZE_REQD"
        case .errTooBig: "NBD_REP_ERR_TOO_BIG"
        default: "reply type \(rawValue)"
        }
    }
}

/// The information items of `NBD_OPT_INFO` / `NBD_OPT_GO` (`NBD_REP_INFO`).
package struct NBDInfoType: RawRepresentable, Sendable, Hashable {
    package var rawValue: UInt16
    package init(rawValue: UInt16) { self.rawValue = rawValue }
    package static let export = NBDInfoType(rawValue: 0)
    package static let name = NBDInfoType(rawValue: 1)
    package static let description = NBDInfoType(rawValue: 2)
    package static let blockSize = NBDInfoType(rawValue: 3)
}

/// A transmission request's command.
package struct NBDCommandType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    package var rawValue: UInt16
    package init(rawValue: UInt16) { self.rawValue = rawValue }
    package static let read = NBDCommandType(rawValue: 0)
    package static let write = NBDCommandType(rawValue: 1)
    package static let disconnect = NBDCommandType(rawValue: 2)
    package static let flush = NBDCommandType(rawValue: 3)
    package static let trim = NBDCommandType(rawValue: 4)
    package static let cache = NBDCommandType(rawValue: 5)
    package static let writeZeroes = NBDCommandType(rawValue: 6)
    package static let blockStatus = NBDCommandType(rawValue: 7)
    package static let resize = NBDCommandType(rawValue: 8)

    package var description: String {
        switch self {
        case .read: "NBD_CMD_READ"
        case .write: "NBD_CMD_WRITE"
        case .disconnect: "NBD_CMD_DISC"
        case .flush: "NBD_CMD_FLUSH"
        case .trim: "NBD_CMD_TRIM"
        case .cache: "NBD_CMD_CACHE"
        case .writeZeroes: "NBD_CMD_WRITE_ZEROES"
        case .blockStatus: "NBD_CMD_BLOCK_STATUS"
        case .resize: "NBD_CMD_RESIZE"
        default: "command \(rawValue)"
        }
    }
}

/// A request's 16 command flags.
package struct NBDCommandFlags: OptionSet, Sendable, Hashable {
    package var rawValue: UInt16
    package init(rawValue: UInt16) { self.rawValue = rawValue }
    package static let fua = NBDCommandFlags(rawValue: 1 << 0)
    package static let noHole = NBDCommandFlags(rawValue: 1 << 1)
    package static let dontFragment = NBDCommandFlags(rawValue: 1 << 2)
    package static let reqOne = NBDCommandFlags(rawValue: 1 << 3)
    package static let fastZero = NBDCommandFlags(rawValue: 1 << 4)
}

/// A structured reply chunk's 16 flags.
package struct NBDReplyFlags: OptionSet, Sendable, Hashable {
    package var rawValue: UInt16
    package init(rawValue: UInt16) { self.rawValue = rawValue }
    package static let done = NBDReplyFlags(rawValue: 1 << 0)
}

/// A structured reply chunk's type; error chunks have bit 15 set.
package struct NBDReplyType: RawRepresentable, Sendable, Hashable {
    package var rawValue: UInt16
    package init(rawValue: UInt16) { self.rawValue = rawValue }
    package static let none = NBDReplyType(rawValue: 0)
    package static let offsetData = NBDReplyType(rawValue: 1)
    package static let offsetHole = NBDReplyType(rawValue: 2)
    package static let blockStatus = NBDReplyType(rawValue: 5)
    package static let error = NBDReplyType(rawValue: 1 << 15 | 1)
    package static let errorOffset = NBDReplyType(rawValue: 1 << 15 | 2)

    package var isError: Bool { rawValue & (1 << 15) != 0 }
}

/// Block status flags of the contexts a disk serves.
package enum NBDState {
    /// `base:allocation`: no storage allocated.
    package static let hole: UInt32 = 1 << 0
    /// `base:allocation`: reads as zeros.
    package static let zero: UInt32 = 1 << 1
    /// `qemu:dirty-bitmap:*`: changed.
    package static let dirty: UInt32 = 1 << 0
}

/// The sizes and caps the protocol and this server impose.
package enum NBDLimits {
    /// The greeting: NBDMAGIC, IHAVEOPT, handshake flags.
    package static let greetingSize = 18
    /// The client's flags after the greeting.
    package static let clientFlagsSize = 4
    /// IHAVEOPT, option, length.
    package static let optionHeaderSize = 16
    /// Reply magic, option, reply type, length.
    package static let optionReplyHeaderSize = 20
    /// Magic, flags, type, handle, offset, length.
    package static let requestSize = 28
    /// Magic, error, handle.
    package static let simpleReplyHeaderSize = 16
    /// Magic, flags, type, handle, length.
    package static let structuredReplyHeaderSize = 20
    /// A string (export name, query, message) longer than this is invalid (proto.md, "Conventions").
    package static let maxStringLength = 4096
    /// Option data beyond this is skipped and answered `NBD_REP_ERR_TOO_BIG` (no option needs it).
    package static let maxOptionLength = 64 << 10
    /// Queries in one `NBD_OPT_LIST/SET_META_CONTEXT`.
    package static let maxMetaContextQueries = 128
    /// The largest READ or WRITE payload (the maximum block size advertised).
    package static let maxPayload = 32 << 20
    /// Descriptors in one block status chunk.
    package static let maxBlockStatusDescriptors = 1 << 20
    /// The 124 zero bytes after `NBD_OPT_EXPORT_NAME`'s reply unless NO_ZEROES was agreed.
    package static let exportNameZeroPadding = 124
}
