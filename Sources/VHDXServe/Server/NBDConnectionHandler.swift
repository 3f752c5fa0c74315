import NIOCore
import NIOPosix
import NIOSSL

/// Sent through a connection's pipeline when the server stops: a negotiating connection is
/// closed, a transmitting one finishes its in-flight requests, then closes.
struct NBDServerStopping: Sendable {}

/// One client connection: the negotiation state machine, then transmission. Runs on its
/// channel's event loop; the disk's calls go to the server's thread pool and their replies come
/// back here, each written whole (replies of one connection may go out in any order).
///
/// Input is accumulated in one buffer and parsed only as far as the limits allow: while an
/// option is answered off the loop, while too many requests or bytes are in flight, or while
/// the socket's outbound buffer is full, the handler holds back `read()` (backpressure), so a
/// connection's memory stays bounded whatever the client sends.
final class NBDConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase { case clientFlags, options, transmission, closed }

    /// What to do once an oversized message's bytes have been skipped.
    private enum AfterDiscard {
        case optionTooBig(NBDOptionType)
        case requestRefused(NBDRequest, ServeError)
    }

    private let core: NBDServerCore
    private let id: Int
    /// Over the connection limit: every option is refused, then the connection closes.
    private let refused: Bool
    private var context: ChannelHandlerContext?
    private var phase = Phase.clientFlags
    private var input: ByteBuffer?
    /// A write's data was sliced out of `input`'s storage and may still be at the disk: growing
    /// `input` in place would copy all of it, so its unread bytes move to a buffer of their own
    /// first (only those: pipelined writes stay linear).
    private var inputShared = false
    private var discardRemaining = 0
    private var afterDiscard: AfterDiscard?
    /// An option is being answered off the event loop: parse nothing more until it is.
    private var busy = false
    private var readHeld = false
    private var clientFlags: NBDClientFlags = []
    private var tlsActive = false
    private var structuredReplies = false
    private var contexts: [NBDSelectedContext] = []
    private var terms: NBDExportTerms?
    private var inFlight = 0
    private var inFlightBytes = 0
    /// A parsed request waiting for the server-wide budget (`InFlightBudget`).
    private var stalled: (request: NBDRequest, payload: ByteBuffer?)?
    /// After NBD_CMD_DISC or the server's stop: nothing more is read; close once in-flight
    /// requests are answered.
    private var draining = false
    private var closing = false
    private var flushScheduled = false
    private var negotiationTimer: Scheduled<Void>?

    init(core: NBDServerCore, id: Int, refused: Bool) {
        self.core = core
        self.id = id
        self.refused = refused
    }

    private func log(_ line: String) { core.configuration.log("connection \(id): \(line)") }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        negotiationTimer?.cancel()
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(buffer(NBDHandshake.greeting([.fixedNewstyle, .noZeroes]))), promise: nil)
        let timeout = refused ? min(core.configuration.negotiationTimeout, .seconds(5)) : core.configuration.negotiationTimeout
        negotiationTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard phase != .transmission, phase != .closed else { return }
            log("did not finish negotiating within \(timeout.nanoseconds / 1_000_000_000) s; dropped")
            hardClose()
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        phase = .closed
        input = nil
        negotiationTimer?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        guard phase != .closed, !closing else { return }
        if draining {
            // proto.md: nothing may follow NBD_CMD_DISC; whatever does is dropped.
            return
        }
        if input == nil || input!.readableBytes == 0 {
            input = incoming
            inputShared = false
        } else {
            if inputShared { unshare(&input!, extra: incoming.readableBytes) }
            input!.writeBuffer(&incoming)
        }
        process()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { process() } else { updateReadInterest() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A client that vanishes (reset, broken pipe) is not worth a line.
        let vanished = (error as? IOError).map { $0.errnoCode == ECONNRESET || $0.errnoCode == EPIPE } ?? false
        if phase != .closed && !vanished { log("dropped: \(error)") }
        hardClose()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is NBDServerStopping {
            beginStop()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        if paused {
            readHeld = true
        } else {
            context.read()
        }
    }

    // MARK: Flow control

    private var paused: Bool {
        if busy || draining || closing || phase == .closed || stalled != nil { return true }
        if let context, !context.channel.isWritable { return true }
        if phase == .transmission && !admitsMore { return true }
        return false
    }

    private var admitsMore: Bool {
        inFlight < core.configuration.maxInFlightRequests && inFlightBytes < core.configuration.maxInFlightBytes
    }

    private func updateReadInterest() {
        guard let context, readHeld, !paused else { return }
        readHeld = false
        context.read()
    }

    // MARK: Parsing

    /// Parses as many whole messages from `input` as the phase and the limits allow.
    private func process() {
        while context != nil, phase != .closed, !closing, !busy, !draining, stalled == nil {
            // Taken out of `input` so this is the storage's only owner: growing it never copies.
            guard var buffer = input.take(), buffer.readableBytes > 0 else { break }
            if discardRemaining > 0 {
                let n = min(discardRemaining, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: n)
                discardRemaining -= n
                input = buffer
                if discardRemaining > 0 { break }
                if let after = afterDiscard {
                    afterDiscard = nil
                    switch after {
                    case .optionTooBig(let option):
                        sendOptionReplies([.error(option, .errTooBig, "\(option): data over \(NBDLimits.maxOptionLength) bytes")])
                    case .requestRefused(let request, let error):
                        writeReply(errorReply(request, error))
                        scheduleFlush()
                    }
                }
                continue
            }
            let progressed: Bool
            switch phase {
            case .clientFlags: progressed = parseClientFlags(&buffer)
            case .options: progressed = parseOption(&buffer)
            // Replies that cannot go out yet hold back new requests too, not only the socket:
            // requests already buffered would otherwise pile up replies without bound.
            case .transmission: progressed = admitsMore && context!.channel.isWritable && parseRequest(&buffer)
            case .closed: progressed = false
            }
            if phase != .closed { input = buffer }
            if !progressed { break }
        }
        compactInput()
        updateReadInterest()
    }

    private func compactInput() {
        guard let buffer = input else { return }
        if buffer.readableBytes == 0 {
            input = nil
            inputShared = false
        } else if buffer.readerIndex > 1 << 16 {
            if inputShared { unshare(&input!, extra: 0) } else { input!.discardReadBytes() }
        }
    }

    /// `buffer`'s unread bytes in storage of their own, with room for `extra` more.
    private func unshare(_ buffer: inout ByteBuffer, extra: Int) {
        var fresh = (context?.channel.allocator ?? ByteBufferAllocator()).buffer(capacity: buffer.readableBytes + extra)
        fresh.writeBuffer(&buffer)
        buffer = fresh
        inputShared = false
    }

    private func parseClientFlags(_ buffer: inout ByteBuffer) -> Bool {
        guard let raw = buffer.readInteger(as: UInt32.self) else { return false }
        let flags = NBDClientFlags(rawValue: raw)
        guard flags.isSubset(of: .known) else {
            log("unknown client flags 0x\(String(raw, radix: 16)); dropped")
            hardClose()
            return false
        }
        if core.configuration.tls?.required == true && !flags.contains(.fixedNewstyle) {
            // TLS needs fixed newstyle (proto.md); a forced-TLS server cannot serve this client.
            log("client without fixed newstyle cannot start TLS, which this server requires; dropped")
            hardClose()
            return false
        }
        clientFlags = flags
        phase = .options
        return true
    }

    private func parseOption(_ buffer: inout ByteBuffer) -> Bool {
        guard buffer.readableBytes >= NBDLimits.optionHeaderSize else { return false }
        let header = buffer.withUnsafeReadableBytes { NBDOptionHeader.decode($0) }
        guard let header else {
            log("garbage instead of an option (no IHAVEOPT magic); dropped")
            hardClose()
            return false
        }
        if header.length > NBDLimits.maxOptionLength {
            buffer.moveReaderIndex(forwardBy: NBDLimits.optionHeaderSize)
            discardRemaining = Int(header.length)
            afterDiscard = .optionTooBig(header.option)
            return true
        }
        let total = NBDLimits.optionHeaderSize + Int(header.length)
        guard buffer.readableBytes >= total else { return false }
        buffer.moveReaderIndex(forwardBy: NBDLimits.optionHeaderSize)
        let data = buffer.readBytes(length: Int(header.length)) ?? []
        // The option is handled with `input` already advanced past it.
        input = buffer
        handleOption(header.option, data: data)
        buffer = input.take() ?? ByteBuffer()
        return true
    }

    private func parseRequest(_ buffer: inout ByteBuffer) -> Bool {
        guard buffer.readableBytes >= NBDLimits.requestSize else { return false }
        let header = buffer.withUnsafeReadableBytes { NBDRequest.decode($0) }
        guard let request = header else {
            log("garbage instead of a request (no request magic); dropped")
            hardClose()
            return false
        }
        var payload: ByteBuffer?
        if request.type == .write {
            let length = Int(request.length)
            if let terms, length > Int(terms.maximumPayload) {
                // Skipped without being stored: the connection stays in step and the client
                // learns why (proto.md allows a disconnect; an error is kinder).
                buffer.moveReaderIndex(forwardBy: NBDLimits.requestSize)
                discardRemaining = length
                afterDiscard = .requestRefused(request, terms.check(request) ?? ServeError(.invalid, "\(request.type) of \(length) bytes exceeds the maximum block size"))
                return true
            }
            guard buffer.readableBytes >= NBDLimits.requestSize + length else {
                // Room for the whole payload at once: no regrowth while it arrives.
                let missing = NBDLimits.requestSize + length - buffer.readableBytes
                if inputShared { unshare(&buffer, extra: missing) } else { buffer.reserveCapacity(minimumWritableBytes: missing) }
                return false
            }
            buffer.moveReaderIndex(forwardBy: NBDLimits.requestSize)
            // The data stays where it arrived (no copy) while the disk writes it.
            payload = buffer.readSlice(length: length)
            inputShared = true
        } else {
            buffer.moveReaderIndex(forwardBy: NBDLimits.requestSize)
        }
        input = buffer
        handleRequest(request, payload: payload)
        buffer = input.take() ?? ByteBuffer()
        return true
    }

    // MARK: Options

    private var exportInfo: ServedDiskInfo { core.info }

    private func knows(_ exportName: String) -> Bool {
        exportName.isEmpty || exportName == core.configuration.exportName
    }

    private func unknownExport(_ option: NBDOptionType, _ name: String) -> NBDOptionReply {
        .error(option, .errUnknown, "no export named \"\(name)\"; this server serves \"\(core.configuration.exportName)\"")
    }

    private func handleOption(_ option: NBDOptionType, data: [UInt8]) {
        let request: NBDOptionRequest
        switch NBDOptionRequest.decode(option, data: data) {
        case .success(let r): request = r
        case .failure(let invalid):
            if option == .exportName {
                log("\(invalid); dropped")
                hardClose()
            } else {
                sendOptionReplies([.error(option, .errInvalid, invalid.description)])
            }
            return
        }
        if refused {
            refuse(request, option)
            return
        }
        let tlsRequired = core.configuration.tls?.required == true && !tlsActive
        switch request {
        case .abort:
            sendOptionReplies([.ack(option)])
            gracefulClose()
        case .startTLS:
            startTLS(option)
        case .exportName(let name):
            guard !tlsRequired else {
                log("NBD_OPT_EXPORT_NAME before STARTTLS, which this server requires; dropped")
                hardClose()
                return
            }
            guard knows(name) else {
                log("NBD_OPT_EXPORT_NAME of unknown export \"\(name)\"; dropped")
                hardClose()
                return
            }
            let terms = makeTerms()
            writeRaw(NBDHandshake.exportNameReply(size: terms.size, flags: terms.transmissionFlags, noZeroes: clientFlags.contains(.noZeroes)))
            enterTransmission(terms)
        case _ where tlsRequired:
            sendOptionReplies([.error(option, .errTLSRequired, "this server requires TLS: send NBD_OPT_STARTTLS first")])
        case .list:
            sendOptionReplies([.server(name: core.configuration.exportName, description: exportInfo.description), .ack(option)])
        case .info(let r), .go(let r):
            guard knows(r.exportName) else {
                sendOptionReplies([unknownExport(option, r.exportName)])
                return
            }
            let terms = makeTerms()
            var replies: [NBDOptionReply] = [.infoExport(option, size: terms.size, flags: terms.transmissionFlags)]
            if r.requests.contains(.name) { replies.append(.infoString(option, .name, core.configuration.exportName)) }
            if r.requests.contains(.description), !exportInfo.description.isEmpty {
                replies.append(.infoString(option, .description, exportInfo.description))
            }
            // Always sent: this server enforces its minimum block size whether asked or not.
            replies.append(.infoBlockSize(option, minimum: exportInfo.minimumBlockSize, preferred: exportInfo.preferredBlockSize,
                                          maximum: terms.maximumPayload))
            replies.append(.ack(option))
            sendOptionReplies(replies)
            if case .go = request { enterTransmission(terms) }
        case .structuredReply:
            structuredReplies = true
            sendOptionReplies([.ack(option)])
        case .listMetaContext(let r), .setMetaContext(let r):
            let setting: Bool
            if case .setMetaContext = request { setting = true } else { setting = false }
            if setting { contexts = [] }
            guard structuredReplies else {
                sendOptionReplies([.error(option, .errInvalid, "\(option) needs NBD_OPT_STRUCTURED_REPLY first")])
                return
            }
            guard knows(r.exportName) else {
                sendOptionReplies([unknownExport(option, r.exportName)])
                return
            }
            answerMetaContexts(option, r.queries, setting: setting)
        case .unsupported(let o):
            sendOptionReplies([.error(option, .errUnsup, "\(o) is not supported by this server")])
        }
    }

    /// Over the connection limit: every option is answered NBD_REP_ERR_SHUTDOWN with the reason,
    /// which obliges the client to abort (ABORT gets its ACK and the connection closes; closing
    /// first could reset the connection before the client reads why). A client that does not
    /// abort is dropped at the (shortened) negotiation timeout.
    private func refuse(_ request: NBDOptionRequest, _ option: NBDOptionType) {
        switch request {
        case .abort:
            sendOptionReplies([.ack(option)])
            gracefulClose()
        case .exportName:
            hardClose()
        default:
            let limit = core.configuration.maxConnections ?? 0
            sendOptionReplies([.error(option, .errShutdown, "the server is serving its limit of \(limit) connections; try again later")])
        }
    }

    private func makeTerms() -> NBDExportTerms {
        let info = exportInfo
        return NBDExportTerms(size: info.size, readOnly: info.readOnly, minimumBlockSize: info.minimumBlockSize,
                              maximumPayload: min(info.maximumBlockSize, UInt32(NBDLimits.maxPayload)),
                              canTrim: info.canTrim, canWriteZeroes: info.canWriteZeroes, canFastZero: info.canFastZero,
                              canMultiConn: info.canMultiConn, structuredReplies: structuredReplies, metaContextCount: contexts.count)
    }

    private func enterTransmission(_ terms: NBDExportTerms) {
        self.terms = terms
        phase = .transmission
        negotiationTimer?.cancel()
        negotiationTimer = nil
    }

    /// The disk is asked off the event loop (it may read tracking metadata); parsing waits.
    private func answerMetaContexts(_ option: NBDOptionType, _ queries: [String], setting: Bool) {
        guard let context else { return }
        busy = true
        let disk = core.disk
        core.pool.runIfActive(eventLoop: context.eventLoop) { () -> [String] in
            let lookup: (String) -> [String] = { disk.metaContexts(matching: $0) }
            return setting ? NBDMetaContextQuery.select(queries, lookup: lookup) : NBDMetaContextQuery.list(queries, lookup: lookup)
        }.assumeIsolated().whenComplete { [self] result in
            busy = false
            guard phase == .options else { return }
            switch result {
            case .success(let names):
                var replies: [NBDOptionReply] = []
                if setting {
                    contexts = names.enumerated().map { NBDSelectedContext(id: UInt32($0.offset + 1), name: $0.element) }
                    replies = contexts.map { .metaContext(option, id: $0.id, name: $0.name) }
                } else {
                    replies = names.map { .metaContext(option, id: 0, name: $0) }
                }
                replies.append(.ack(option))
                sendOptionReplies(replies)
            case .failure:
                sendOptionReplies([.error(option, .errShutdown, "the server is stopping")])
            }
            process()
        }
    }

    private func startTLS(_ option: NBDOptionType) {
        guard let sslContext = core.sslContext else {
            sendOptionReplies([.error(option, .errUnsup, "TLS is not configured on this server (--tls-cert, --tls-key)")])
            return
        }
        guard !tlsActive else {
            sendOptionReplies([.error(option, .errInvalid, "TLS is already running")])
            return
        }
        guard clientFlags.contains(.fixedNewstyle) else {
            sendOptionReplies([.error(option, .errPolicy, "TLS needs fixed newstyle negotiation")])
            return
        }
        guard let context else { return }
        // The client waits for the ACK before its TLS handshake: bytes already here are a
        // protocol violation (and could not be decrypted).
        if let input, input.readableBytes > 0 {
            log("data after NBD_OPT_STARTTLS before its reply; dropped")
            hardClose()
            return
        }
        sendOptionReplies([.ack(option)])
        do {
            try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext), position: .first)
        } catch {
            log("TLS could not start: \(error); dropped")
            hardClose()
            return
        }
        tlsActive = true
        // proto.md: nothing negotiated before STARTTLS survives it.
        structuredReplies = false
        contexts = []
    }

    private func sendOptionReplies(_ replies: [NBDOptionReply]) {
        var bytes: [UInt8] = []
        for r in replies { bytes += r.encode() }
        writeRaw(bytes)
    }

    // MARK: Requests

    private func handleRequest(_ request: NBDRequest, payload: ByteBuffer?) {
        guard let terms, let context else { return }
        if request.type == .disconnect {
            draining = true
            input = nil
            if inFlight == 0 { gracefulClose() }
            return
        }
        if let error = terms.check(request) {
            writeReply(errorReply(request, error))
            scheduleFlush()
            return
        }
        // Requests the disk has nothing to do for.
        let nothingToDo: Bool
        switch request.type {
        case .cache: nothingToDo = true
        case .flush: nothingToDo = terms.readOnly
        case .read, .write, .trim, .writeZeroes: nothingToDo = request.length == 0
        default: nothingToDo = false
        }
        if nothingToDo {
            writeReply(successReply(request))
            scheduleFlush()
            return
        }
        let cost = request.type == .read || request.type == .write ? Int(request.length) : 0
        if cost > 0 {
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let loop = context.eventLoop
            guard core.budget.take(cost, orWait: { loop.execute { bound.value.resumeStalled() } }) else {
                stalled = (request, payload)
                return
            }
        }
        inFlight += 1
        inFlightBytes += cost
        let job = NBDJob(request: request, payload: payload, structuredReplies: terms.structuredReplies, contexts: contexts,
                         allocator: context.channel.allocator, minimumBlockSize: terms.minimumBlockSize)
        let disk = core.disk
        let log = core.configuration.log
        let id = self.id
        core.pool.runIfActive(eventLoop: context.eventLoop) { () -> ByteBuffer in
            job.run(disk) { log("connection \(id): \($0)") }
        }.assumeIsolated().whenComplete { [self] result in
            inFlight -= 1
            inFlightBytes -= cost
            switch result {
            case .success(let reply):
                // The budget counts the disk's work only: a reply waiting for a slow client is
                // bounded by the channel's write watermark, which stops reading from that client
                // alone; holding the budget for it would let clients that do not read starve the rest.
                if cost > 0 { core.budget.give(cost) }
                writeReply(reply)
                scheduleFlush()
            case .failure(let error):
                if cost > 0 { core.budget.give(cost) }
                log("\(request.type) not run: \(error); dropped")
                hardClose()
                return
            }
            if draining && inFlight == 0 {
                gracefulClose()
            } else {
                process()
            }
        }
    }

    private func errorReply(_ request: NBDRequest, _ error: ServeError) -> ByteBuffer {
        buffer(NBDJob.errorBytes(request, error, structured: terms?.structuredReplies ?? false))
    }

    private func successReply(_ request: NBDRequest) -> ByteBuffer {
        if request.type == .read, terms?.structuredReplies == true {
            return buffer(NBDReply.none(handle: request.handle))
        }
        return buffer(NBDReply.simple(handle: request.handle))
    }

    // MARK: Output and closing

    private func buffer(_ bytes: [UInt8]) -> ByteBuffer {
        var b = (context?.channel.allocator ?? ByteBufferAllocator()).buffer(capacity: bytes.count)
        b.writeBytes(bytes)
        return b
    }

    private func writeRaw(_ bytes: [UInt8]) {
        guard let context, phase != .closed else { return }
        context.writeAndFlush(wrapOutboundOut(buffer(bytes)), promise: nil)
    }

    private func writeReply(_ reply: ByteBuffer) {
        guard let context, phase != .closed else { return }
        context.write(wrapOutboundOut(reply), promise: nil)
    }

    /// Runs the request that waited for the server-wide budget, then goes on reading.
    private func resumeStalled() {
        guard let s = stalled else { return }
        stalled = nil
        guard context != nil, phase != .closed else { return }
        handleRequest(s.request, payload: s.payload)
        process()
        updateReadInterest()
    }

    /// One flush for the replies that complete in the same turn of the event loop.
    private func scheduleFlush() {
        guard let context, !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            flushScheduled = false
            self.context?.flush()
        }
    }

    private func beginStop() {
        switch phase {
        case .transmission:
            draining = true
            input = nil
            if inFlight == 0 { gracefulClose() }
        case .closed:
            break
        default:
            hardClose()
        }
    }

    /// Closes after everything written so far has reached the socket.
    private func gracefulClose() {
        guard let context, !closing, phase != .closed else { return }
        closing = true
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: promise)
        promise.futureResult.assumeIsolated().whenComplete { [self] _ in
            self.context?.close(promise: nil)
        }
    }

    private func hardClose() {
        guard let context, phase != .closed else { return }
        closing = true
        phase = .closed
        input = nil
        context.close(promise: nil)
    }
}

/// A context a connection selected, with the id its block status chunks carry.
struct NBDSelectedContext: Sendable, Equatable {
    var id: UInt32
    var name: String
}
