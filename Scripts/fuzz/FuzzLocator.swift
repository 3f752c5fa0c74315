// libFuzzer entry point for the parent locator (Sources/VHDXFormat/Structures/ParentLocator.swift)
// and the parent paths derived from it (Sources/VHDX/Chain/ParentPaths.swift). The input is the
// locator metadata item. A locator that decodes must encode to bytes that decode to the same
// locator; its linkage GUIDs are parsed; its path strings go through the candidate list a
// differencing open tries, for a child in a temporary folder (the only filesystem calls are the
// realpath of that folder; no candidate is opened), and through the path helpers, whose results
// are checked: candidates distinct and non-empty, normalize idempotent.

@testable import VHDX
@testable import VHDXFormat

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real folder for the child, so realpath has something to resolve.
private let childDirectory: String = {
    var template = Array("/tmp/vhdx-fuzz-locator-XXXXXX".utf8CString)
    guard let dir = mkdtemp(&template) else { fatalError("mkdtemp failed: errno \(errno)") }
    let path = String(cString: dir)
    mkdir(path + "/child", 0o700)
    return path
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLocator(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = inputBytes(data, size)
    var r = ByteReader(bytes, base: 4096, structure: "parent locator")
    do {
        let locator = try ParentLocator(parsing: &r)
        say("locator: \(locator.entries.count) entries")
        var again = ByteReader(locator.encode(), base: 0, structure: "parent locator")
        guard (try? ParentLocator(parsing: &again)) == locator else { fatalError("parent locator does not round-trip") }
        _ = locator.parentLinkage
        _ = locator.parentLinkage2
        paths(locator)
    } catch {
        say("locator: \(error)")
    }
    return 0
}

private func paths(_ locator: ParentLocator) {
    let child = childDirectory + "/child/child.avhdx"
    for children in [child, "rel/child.avhdx", "child.avhdx"] {
        let candidates = ParentPaths.candidates(childPath: children, locator: locator, searchDirectories: [childDirectory, "search", "/"])
        say("candidates: \(candidates)")
        guard Set(candidates).count == candidates.count, !candidates.contains("") else { fatalError("candidates repeat or are empty: \(candidates)") }
    }
    for (_, value) in locator.entries {
        let n = ParentPaths.normalize(value)
        guard ParentPaths.normalize(n) == n else { fatalError("normalize is not idempotent on \(value.debugDescription): \(n.debugDescription)") }
        _ = ParentPaths.components(value)
        _ = ParentPaths.win32Path(forPOSIX: value)
        _ = ParentPaths.directory(of: value)
        if value.hasPrefix("/") {
            _ = ParentPaths.relativeWindowsPath(from: childDirectory, to: value)
            _ = ParentPaths.relativeWindowsPath(from: value, to: child)
        }
    }
}
