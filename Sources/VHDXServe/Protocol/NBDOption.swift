/// The client's side of option haggling: the flags after the greeting, each option's header,
/// and what an option's data says.

/// `IHAVEOPT`, option, data length: the 16 bytes before every option's data.
package struct NBDOptionHeader: Sendable, Equatable {
    package var option: NBDOptionType
    package var length: UInt32

    package init(option: NBDOptionType, length: UInt32) {
        self.option = option
        self.length = length
    }

    /// The header at the start of `raw` (at least 16 bytes), or nil when the magic is wrong.
    package static func decode(_ raw: UnsafeRawBufferPointer) -> NBDOptionHeader? {
        precondition(raw.count >= NBDLimits.optionHeaderSize)
        guard WireLoad.u64(raw, 0) == NBDMagic.option else { return nil }
        return NBDOptionHeader(option: NBDOptionType(rawValue: WireLoad.u32(raw, 8)), length: WireLoad.u32(raw, 12))
    }

    /// The header and `data` as a client sends them.
    package static func encode(_ option: NBDOptionType, data: [UInt8] = []) -> [UInt8] {
        var w = WireWriter(capacity: NBDLimits.optionHeaderSize + data.count)
        w.u64(NBDMagic.option)
        w.u32(option.rawValue)
        w.u32(UInt32(data.count))
        w.bytes(data)
        return w.bytes
    }
}

/// `NBD_OPT_INFO` / `NBD_OPT_GO`: an export name and the information items asked for.
package struct NBDInfoRequest: Sendable, Equatable {
    package var exportName: String
    package var requests: [NBDInfoType]

    package init(exportName: String, requests: [NBDInfoType]) {
        self.exportName = exportName
        self.requests = requests
    }

    package func encode() -> [UInt8] {
        var w = WireWriter()
        let name = WireString.encode(exportName)
        w.u32(UInt32(name.count))
        w.bytes(name)
        w.u16(UInt16(requests.count))
        for r in requests { w.u16(r.rawValue) }
        return w.bytes
    }
}

/// `NBD_OPT_LIST_META_CONTEXT` / `NBD_OPT_SET_META_CONTEXT`: an export name and queries.
package struct NBDMetaContextRequest: Sendable, Equatable {
    package var exportName: String
    package var queries: [String]

    package init(exportName: String, queries: [String]) {
        self.exportName = exportName
        self.queries = queries
    }

    package func encode() -> [UInt8] {
        var w = WireWriter()
        let name = WireString.encode(exportName)
        w.u32(UInt32(name.count))
        w.bytes(name)
        w.u32(UInt32(queries.count))
        for q in queries {
            let b = WireString.encode(q)
            w.u32(UInt32(b.count))
            w.bytes(b)
        }
        return w.bytes
    }
}

/// One option as the server understands it.
package enum NBDOptionRequest: Sendable, Equatable {
    case exportName(String)
    case abort
    case list
    case startTLS
    case info(NBDInfoRequest)
    case go(NBDInfoRequest)
    case structuredReply
    case listMetaContext(NBDMetaContextRequest)
    case setMetaContext(NBDMetaContextRequest)
    /// An option this server does not implement (answered `NBD_REP_ERR_UNSUP`).
    case unsupported(NBDOptionType)

    /// Why an option's data cannot be understood (answered `NBD_REP_ERR_INVALID`, or a hard
    /// disconnect for `NBD_OPT_EXPORT_NAME`, which cannot be answered with an error).
    package struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        package var option: NBDOptionType
        package var reason: String
        package var description: String { "\(option): \(reason)" }
    }

    /// What `data` (the option's whole data) says for `option`.
    package static func decode(_ option: NBDOptionType, data: [UInt8]) -> Result<NBDOptionRequest, Invalid> {
        func invalid(_ reason: String) -> Result<NBDOptionRequest, Invalid> { .failure(Invalid(option: option, reason: reason)) }
        switch option {
        case .exportName:
            guard let name = WireString.decode(data) else { return invalid("the export name is not a valid string") }
            return .success(.exportName(name))
        case .abort:
            // proto.md: data with NBD_OPT_ABORT is ignored, not refused.
            return .success(.abort)
        case .list:
            return data.isEmpty ? .success(.list) : invalid("NBD_OPT_LIST carries no data")
        case .startTLS:
            return data.isEmpty ? .success(.startTLS) : invalid("NBD_OPT_STARTTLS carries no data")
        case .structuredReply:
            return data.isEmpty ? .success(.structuredReply) : invalid("NBD_OPT_STRUCTURED_REPLY carries no data")
        case .info, .go:
            var r = WireReader(data)
            guard let nameLength = r.u32(), Int(nameLength) <= r.remaining else { return invalid("the export name's length exceeds the option") }
            guard let name = r.string(Int(nameLength)) else { return invalid("the export name is not a valid string") }
            guard let count = r.u16() else { return invalid("the count of information requests is missing") }
            guard r.remaining == Int(count) * 2 else { return invalid("\(count) information requests do not fill \(r.remaining) bytes") }
            var items: [NBDInfoType] = []
            for _ in 0..<count { items.append(NBDInfoType(rawValue: r.u16()!)) }
            let request = NBDInfoRequest(exportName: name, requests: items)
            return .success(option == .info ? .info(request) : .go(request))
        case .listMetaContext, .setMetaContext:
            var r = WireReader(data)
            guard let nameLength = r.u32(), Int(nameLength) <= r.remaining else { return invalid("the export name's length exceeds the option") }
            guard let name = r.string(Int(nameLength)) else { return invalid("the export name is not a valid string") }
            guard let count = r.u32() else { return invalid("the count of queries is missing") }
            guard count <= NBDLimits.maxMetaContextQueries else { return invalid("\(count) queries (at most \(NBDLimits.maxMetaContextQueries))") }
            var queries: [String] = []
            for i in 0..<Int(count) {
                guard let length = r.u32(), Int(length) <= r.remaining else { return invalid("query \(i)'s length exceeds the option") }
                guard let q = r.string(Int(length)) else { return invalid("query \(i) is not a valid string") }
                queries.append(q)
            }
            guard r.remaining == 0 else { return invalid("\(r.remaining) bytes after the last query") }
            let request = NBDMetaContextRequest(exportName: name, queries: queries)
            return .success(option == .listMetaContext ? .listMetaContext(request) : .setMetaContext(request))
        default:
            return .success(.unsupported(option))
        }
    }
}
