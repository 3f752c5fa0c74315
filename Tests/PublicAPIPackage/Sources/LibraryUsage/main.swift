import Foundation
import VHDX
import VHDXChangeTracking

// Where to work: the first argument, or /tmp.
let dir = CommandLine.arguments.dropFirst().first ?? "/tmp"
let basePath = dir + "/base.vhdx", childPath = dir + "/child.avhdx"

do {
    // Create a 64 MiB dynamic disk (New-VHD defaults: 32 MiB blocks, 512/4096-byte sectors).
    try VHDXCreator.create(path: basePath, options: CreateOptions(virtualSize: 64 << 20))

    // Write through the engine: blocks are allocated, metadata goes through the log.
    // A handle holds the file's lock until it is released: keep it in a scope.
    do {
        let disk = try VHDXFile.open(path: basePath, writable: true)
        try ChangeTracking.enable(disk)                 // change IDs from here on
        try disk.write(Array("hello, vhdx".utf8), at: 1 << 20)
        try disk.close()
    }

    // Read back and inspect.
    do {
        let image = try VHDXFile.open(path: basePath)
        let text = String(decoding: try image.read(at: 1 << 20, count: 11), as: UTF8.self)
        print("read back: \(text)")
        print("type: \(image.diskType), size: \(image.virtualSize), block size: \(image.blockSize)")
    }
    let report = try Checker.check(path: basePath)
    print("check: \(report.findings.filter { $0.kind == .corruption }.count) corruption findings")

    // A differencing child: writes go to the child, reads fall through to the parent.
    try VHDXCreator.createChild(path: childPath, parentPath: basePath)
    do {
        let top = try VHDXFile.open(path: childPath, writable: true)   // resolves its parent chain
        try top.write(Array("HELLO".utf8), at: 1 << 20)
        try top.close()
    }
    let chain = try VHDXFile.open(path: childPath)
    print("through the chain: \(String(decoding: try chain.read(at: 1 << 20, count: 11), as: UTF8.self)) (\(chain.chain.count) layers)")
} catch {
    print("error: \(error)")
    exit(1)
}
