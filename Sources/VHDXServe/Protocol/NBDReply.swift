/// Transmission replies: simple replies, and structured reply chunks (OFFSET_DATA,
/// OFFSET_HOLE, BLOCK_STATUS, ERROR, ERROR_OFFSET, NONE).
package enum NBDReply {
    /// A simple reply's header; a successful READ's data follows it.
    package static func simple(handle: UInt64, error: UInt32 = 0) -> [UInt8] {
        var w = WireWriter(capacity: NBDLimits.simpleReplyHeaderSize)
        w.u32(NBDMagic.simpleReply)
        w.u32(error)
        w.u64(handle)
        return w.bytes
    }

    /// A structured chunk's 20-byte header.
    package static func chunkHeader(handle: UInt64, type: NBDReplyType, flags: NBDReplyFlags, length: UInt32) -> [UInt8] {
        var w = WireWriter(capacity: NBDLimits.structuredReplyHeaderSize)
        chunkHeader(into: &w, handle: handle, type: type, flags: flags, length: length)
        return w.bytes
    }

    private static func chunkHeader(into w: inout WireWriter, handle: UInt64, type: NBDReplyType, flags: NBDReplyFlags, length: UInt32) {
        w.u32(NBDMagic.structuredReply)
        w.u16(flags.rawValue)
        w.u16(type.rawValue)
        w.u64(handle)
        w.u32(length)
    }

    /// The size of an OFFSET_DATA chunk's header and offset, before its data.
    package static let offsetDataPrefixSize = NBDLimits.structuredReplyHeaderSize + 8

    /// An OFFSET_DATA chunk's header and offset; `dataLength` bytes of data follow.
    package static func offsetDataPrefix(handle: UInt64, offset: UInt64, dataLength: Int, done: Bool) -> [UInt8] {
        precondition(dataLength > 0 && dataLength <= Int(UInt32.max) - 8)
        var w = WireWriter(capacity: offsetDataPrefixSize)
        chunkHeader(into: &w, handle: handle, type: .offsetData, flags: done ? .done : [], length: UInt32(8 + dataLength))
        w.u64(offset)
        return w.bytes
    }

    /// An OFFSET_HOLE chunk: `length` bytes at `offset` read as zeros.
    package static func offsetHole(handle: UInt64, offset: UInt64, length: UInt32, done: Bool) -> [UInt8] {
        precondition(length > 0)
        var w = WireWriter(capacity: NBDLimits.structuredReplyHeaderSize + 12)
        chunkHeader(into: &w, handle: handle, type: .offsetHole, flags: done ? .done : [], length: 12)
        w.u64(offset)
        w.u32(length)
        return w.bytes
    }

    /// A BLOCK_STATUS chunk for one context: its id and its descriptors (at least one).
    package static func blockStatus(handle: UInt64, contextID: UInt32, extents: [BlockStatusExtent], done: Bool) -> [UInt8] {
        precondition(!extents.isEmpty && extents.count <= NBDLimits.maxBlockStatusDescriptors)
        let length = 4 + 8 * extents.count
        var w = WireWriter(capacity: NBDLimits.structuredReplyHeaderSize + length)
        chunkHeader(into: &w, handle: handle, type: .blockStatus, flags: done ? .done : [], length: UInt32(length))
        w.u32(contextID)
        for e in extents {
            w.u32(e.length)
            w.u32(e.flags)
        }
        return w.bytes
    }

    /// An ERROR chunk (final), or ERROR_OFFSET when `offset` is given.
    package static func errorChunk(handle: UInt64, error: UInt32, message: String, offset: UInt64? = nil, done: Bool = true) -> [UInt8] {
        precondition(error != 0)
        // The message length is 16 bits and a string is at most 4096 bytes.
        let text = WireString.encode(message)
        let length = 6 + text.count + (offset == nil ? 0 : 8)
        var w = WireWriter(capacity: NBDLimits.structuredReplyHeaderSize + length)
        chunkHeader(into: &w, handle: handle, type: offset == nil ? .error : .errorOffset, flags: done ? .done : [], length: UInt32(length))
        w.u32(error)
        w.u16(UInt16(text.count))
        w.bytes(text)
        if let offset { w.u64(offset) }
        return w.bytes
    }

    /// The NONE chunk that ends a reply.
    package static func none(handle: UInt64) -> [UInt8] {
        chunkHeader(handle: handle, type: .none, flags: .done, length: 0)
    }
}

/// A reply as a client reads it: the header of a simple reply or a structured chunk (for
/// tests and probes; the server never parses replies).
package enum NBDReplyHeader: Equatable, Sendable {
    /// Magic, error, handle (16 bytes).
    case simple(error: UInt32, handle: UInt64)
    /// Magic, flags, type, handle, payload length (20 bytes).
    case structured(flags: NBDReplyFlags, type: NBDReplyType, handle: UInt64, length: UInt32)

    /// The header at the start of `raw`, with how many bytes it took; nil when `raw` is too
    /// short or the magic is neither reply's.
    package static func decode(_ raw: UnsafeRawBufferPointer) -> (header: NBDReplyHeader, size: Int)? {
        guard raw.count >= 4 else { return nil }
        switch WireLoad.u32(raw, 0) {
        case NBDMagic.simpleReply:
            guard raw.count >= NBDLimits.simpleReplyHeaderSize else { return nil }
            return (.simple(error: WireLoad.u32(raw, 4), handle: WireLoad.u64(raw, 8)), NBDLimits.simpleReplyHeaderSize)
        case NBDMagic.structuredReply:
            guard raw.count >= NBDLimits.structuredReplyHeaderSize else { return nil }
            return (.structured(flags: NBDReplyFlags(rawValue: WireLoad.u16(raw, 4)), type: NBDReplyType(rawValue: WireLoad.u16(raw, 6)),
                                handle: WireLoad.u64(raw, 8), length: WireLoad.u32(raw, 16)), NBDLimits.structuredReplyHeaderSize)
        default:
            return nil
        }
    }
}
