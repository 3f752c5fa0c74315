import NIOCore

/// One checked request at the disk: runs on a thread-pool thread and returns the whole reply,
/// encoded (a read's data is read straight into the reply buffer, after its header).
struct NBDJob: Sendable {
    var request: NBDRequest
    var payload: ByteBuffer?
    var structuredReplies: Bool
    var contexts: [NBDSelectedContext]
    var allocator: ByteBufferAllocator
    var minimumBlockSize: UInt32

    func run(_ disk: any ServedDisk, log: (String) -> Void) -> ByteBuffer {
        do throws(ServeError) {
            return try perform(disk)
        } catch {
            log("\(request.type) at \(request.offset), \(request.length) bytes failed: \(error.message)")
            return bytes(Self.errorBytes(request, error, structured: structuredReplies))
        }
    }

    private func perform(_ disk: any ServedDisk) throws(ServeError) -> ByteBuffer {
        let r = request
        switch r.type {
        case .read:
            let length = Int(r.length)
            let prefix = structuredReplies
                ? NBDReply.offsetDataPrefix(handle: r.handle, offset: r.offset, dataLength: length, done: true)
                : NBDReply.simple(handle: r.handle)
            var reply = allocator.buffer(capacity: prefix.count + length)
            reply.writeBytes(prefix)
            try Self.untyped {
                _ = try reply.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
                    try disk.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<length]), at: r.offset)
                    return length
                }
            }
            return reply
        case .write:
            guard let payload else { throw ServeError(.invalid, "\(r.type) without data") }
            try Self.untyped {
                try payload.withUnsafeReadableBytes { raw in
                    try disk.write(raw, at: r.offset, fua: r.flags.contains(.fua))
                }
            }
        case .flush:
            try disk.flush()
        case .trim:
            try disk.trim(at: r.offset, length: UInt64(r.length), fua: r.flags.contains(.fua))
        case .writeZeroes:
            try disk.writeZeroes(at: r.offset, length: UInt64(r.length), mayDeallocate: !r.flags.contains(.noHole),
                                 fastOnly: r.flags.contains(.fastZero), fua: r.flags.contains(.fua))
        case .blockStatus:
            return bytes(try blockStatus(disk))
        default:
            throw ServeError(.invalid, "unknown command \(r.type.rawValue)")
        }
        return bytes(NBDReply.simple(handle: r.handle))
    }

    /// One BLOCK_STATUS chunk per selected context, the last one final. What the disk answers
    /// is trimmed to what the protocol allows: no empty extents, one extent with REQ_ONE, no
    /// extent after the requested length is covered, nothing past it.
    private func blockStatus(_ disk: any ServedDisk) throws(ServeError) -> [UInt8] {
        let r = request
        let reqOne = r.flags.contains(.reqOne)
        var out: [UInt8] = []
        for (i, c) in contexts.enumerated() {
            let answer = try disk.blockStatus(context: c.name, at: r.offset, length: UInt64(r.length),
                                              maxExtents: reqOne ? 1 : NBDLimits.maxBlockStatusDescriptors)
            let extents = Self.clip(answer, to: r.length, one: reqOne)
            guard !extents.isEmpty else { throw ServeError(.io, "\(c.name): the disk described no extent at \(r.offset)") }
            out += NBDReply.blockStatus(handle: r.handle, contextID: c.id, extents: extents, done: i == contexts.count - 1)
        }
        return out
    }

    /// `extents` cut to cover at most `length` bytes (at most one extent with `one`).
    static func clip(_ extents: [BlockStatusExtent], to length: UInt32, one: Bool) -> [BlockStatusExtent] {
        var out: [BlockStatusExtent] = []
        var covered: UInt64 = 0
        let limit = one ? 1 : NBDLimits.maxBlockStatusDescriptors
        for e in extents where e.length > 0 {
            let room = UInt64(length) - covered
            let take = UInt32(min(UInt64(e.length), room))
            out.append(BlockStatusExtent(length: take, flags: e.flags))
            covered += UInt64(take)
            if covered >= UInt64(length) || out.count >= limit { break }
        }
        return out
    }

    /// The error reply: an ERROR chunk with the message when structured replies are on, else
    /// a simple reply with the error (and, for a read, no data).
    static func errorBytes(_ request: NBDRequest, _ error: ServeError, structured: Bool) -> [UInt8] {
        structured
            ? NBDReply.errorChunk(handle: request.handle, error: error.code.rawValue, message: error.message)
            : NBDReply.simple(handle: request.handle, error: error.code.rawValue)
    }

    private func bytes(_ b: [UInt8]) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: b.count)
        buffer.writeBytes(b)
        return buffer
    }

    /// Runs `body`, whose error can only be the disk's `ServeError`, as typed throws.
    private static func untyped(_ body: () throws -> Void) throws(ServeError) {
        do {
            try body()
        } catch let e as ServeError {
            throw e
        } catch {
            throw ServeError(.io, "\(error)")
        }
    }
}
