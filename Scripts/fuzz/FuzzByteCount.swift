// libFuzzer entry point for the CLI's size parser (Sources/VHDXTool/ByteCount.swift): any bytes
// as the argument text (invalid UTF-8 repaired as Swift's String does for a command line). A size
// that parses must print (description) as text that parses to the same size.

@testable import VHDXTool

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzByteCount(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let n = try ByteCount.parse(text)
        say("\(text.debugDescription) = \(n.bytes) bytes, printed \(n.description)")
        guard let again = try? ByteCount.parse(n.description), again == n else {
            fatalError("\(text.debugDescription) parsed to \(n.bytes), printed as \(n.description), which does not parse back")
        }
        _ = ByteCount(argument: text)
    } catch {
        say("\(text.debugDescription): \(error)")
    }
    return 0
}
