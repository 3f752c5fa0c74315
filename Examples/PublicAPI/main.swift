// Converting and comparing disks through swift-vhdx's public API only: what `vhdx convert` and
// `vhdx compare` do, from a user's program. PublicAPITests type-checks this file against the
// built modules without swift-vhdx's package name (so `package` symbols are invisible to it),
// then links and runs it.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX

// Where to work: the first argument, or /tmp.
let dir = CommandLine.arguments.dropFirst().first ?? "/tmp"
let sourcePath = dir + "/source.vhdx", rawPath = dir + "/disk.raw", copyPath = dir + "/copy.vhdx"

do {
    // A 64 MiB dynamic disk with some data in it.
    try VHDXCreator.create(path: sourcePath, options: CreateOptions(virtualSize: 64 << 20), overwrite: true)
    do {
        let disk = try VHDXFile.open(path: sourcePath, writable: true)
        try disk.write(Array("hello, vhdx".utf8), at: 1 << 20)
        try disk.close()
    }

    // Open it as a disk to convert: VHDX or raw, found by its signature.
    let source = try DiskImage(path: sourcePath)
    print("source: \(source.format), \(source.virtualSize) bytes")

    // To a sparse raw image, and to a VHDX with 1 MiB blocks (sector sizes: the source's).
    try source.convert(to: rawPath, format: .raw, overwrite: true)
    try source.convert(to: copyPath, format: .vhdx(VHDXConversionOptions(blockSize: 1 << 20)), overwrite: true) { done, total in
        if done == total { print("converted \(total) bytes") }
    }

    // Compare: the raw image and the copy hold the same disk. A DiskImage holds its file's
    // (shared) lock while it lives: keep it in a scope before writing to that file.
    do {
        let raw = try DiskImage(path: rawPath)
        let copy = try DiskImage(path: copyPath)
        let same = try raw.compare(with: copy)
        print("raw vs copy: \(same.identical ? "identical" : "different at \(same.firstDifference ?? 0)")")

        // Strict: allocation must match as well. The source allocates 32 MiB blocks, the copy
        // 1 MiB ones, so the source's first block is allocated where the copy's first is not.
        let strict = try source.compare(with: copy, options: CompareOptions(strict: true))
        print("strict: \(strict.identical ? "identical" : "\(strict.reason?.rawValue ?? "?") at \(strict.firstDifference ?? 0)")")
    }

    // One byte changed: the first difference and why.
    do {
        let disk = try VHDXFile.open(path: copyPath, writable: true)
        try disk.write(Array("J".utf8), at: (1 << 20) + 7)
        try disk.close()
    }
    let changed = try source.compare(with: try DiskImage(path: copyPath))
    print("after a write: \(changed.reason?.rawValue ?? "identical") at \(changed.firstDifference.map(String.init) ?? "-")")

    // The raw bytes to a descriptor, as `vhdx convert SRC -` streams them to standard output.
    let fd = open(dir + "/stream.raw", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw VHDXError(.io, "cannot create stream.raw", path: dir) }
    defer { close(fd) }
    try source.writeRaw(toDescriptor: fd)
    let streamed = try DiskImage(path: dir + "/stream.raw")
    print("streamed: \(streamed.virtualSize) bytes, \(try streamed.compare(with: try DiskImage(path: rawPath)).identical ? "identical" : "different")")
} catch {
    print("error: \(error)")
    exit(1)
}
