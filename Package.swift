// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "swift-vhdx",
    products: [
        .library(name: "VHDXFormat", targets: ["VHDXFormat"]),
        .library(name: "VHDX", targets: ["VHDX"]),
        .library(name: "VHDXChangeTracking", targets: ["VHDXChangeTracking"]),
        .library(name: "VHDXSets", targets: ["VHDXSets"]),
        .library(name: "VHDXExport", targets: ["VHDXExport"]),
        .library(name: "VHDXServe", targets: ["VHDXServe"]),
        .library(name: "VHDXObjectStore", targets: ["VHDXObjectStore"]),
        .executable(name: "vhdx", targets: ["VHDXTool"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        // SHA-256 of the export stream's blocks and records.
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        // `swift package generate-documentation --target VHDX` (the DocC catalog in Sources/VHDX/VHDX.docc).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // `vhdx serve`: the NBD server (event loops, sockets) and its STARTTLS.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // VHDXObjectStore: S3-compatible object storage over HTTP (exports to s3://).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // CRC-32C with the CPU's instruction (SSE4.2 / ARMv8 CRC), hand-written; VHDXFormat's
        // CRC32C falls back to its table-driven Swift code without it.
        .target(name: "CCRC32C"),
        // Pure bytes <-> values. No I/O, no Foundation.
        .target(name: "VHDXFormat", dependencies: ["CCRC32C"], swiftSettings: [.strictMemorySafety()]),
        // The Linux file-system calls Swift's Glibc module does not export (fallocate,
        // copy_file_range, renameat2, sync_file_range), for the engine's platform layer.
        .target(name: "CPlatform"),
        // Engine: storage, open, log replay, read, map, check.
        .target(name: "VHDX", dependencies: ["VHDXFormat", "CPlatform"]),
        // Resilient change tracking: a region of our own inside the VHDX, the engine's observer.
        .target(name: "VHDXChangeTracking", dependencies: ["VHDX", "VHDXFormat"], exclude: ["TRACKING-FORMAT.md"]),
        // VHD Sets (.vhds): a set file of our own layout over a chain of tracked backing files.
        .target(name: "VHDXSets", dependencies: ["VHDX", "VHDXChangeTracking", "VHDXFormat"], exclude: ["SET-FORMAT.md"]),
        // The system's zlib (Debian: zlib1g-dev), the export stream's codec.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        // Full and incremental exports (stream, .vhdx, .avhdx), restore, apply and verify.
        .target(name: "VHDXExport",
                dependencies: ["VHDX", "VHDXChangeTracking", "VHDXSets", "VHDXFormat", "CZlib", "VHDXObjectStore",
                               .product(name: "Crypto", package: "swift-crypto")],
                exclude: ["EXPORT-FORMAT.md"]),
        // `vhdx serve`: an NBD server (SwiftNIO) over the engine: chains, sets, change-ID bitmaps.
        .target(name: "VHDXServe",
                dependencies: ["VHDX", "VHDXChangeTracking", "VHDXSets", "VHDXExport", "VHDXFormat",
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOSSL", package: "swift-nio-ssl")]),
        // S3-compatible object storage (SigV4, multipart uploads, ranged reads), blocking APIs
        // for the export stream; knows nothing of VHDX.
        .target(name: "VHDXObjectStore",
                dependencies: [.product(name: "AsyncHTTPClient", package: "async-http-client"),
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOHTTP1", package: "swift-nio"),
                               .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                               .product(name: "Crypto", package: "swift-crypto")],
                exclude: ["OBJECT-STORE.md"]),
        // Thin CLI; the executable product is `vhdx`.
        .executableTarget(
            name: "VHDXTool",
            dependencies: ["VHDX", "VHDXChangeTracking", "VHDXSets", "VHDXExport", "VHDXServe", "VHDXObjectStore", "CPlatform", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // The benchmark driver (VHDXBench) is a package of its own: Scripts/Benchmarks/.
        .testTarget(name: "VHDXFormatTests", dependencies: ["VHDXFormat"]),
        // Test doubles (crash and failing storages, write recorder) and fixture helpers, shared
        // by the test targets. A plain target, so the engine gives it `package` access.
        .target(name: "VHDXTestSupport", dependencies: ["VHDX", "VHDXFormat", "VHDXObjectStore"], path: "Tests/VHDXTestSupport"),
        .testTarget(name: "VHDXTests", dependencies: ["VHDX", "VHDXFormat", "VHDXTestSupport"]),
        .testTarget(name: "VHDXChangeTrackingTests",
                    dependencies: ["VHDXChangeTracking", "VHDX", "VHDXFormat", "VHDXTestSupport",
                                   .product(name: "PropertyBased", package: "swift-property-based")]),
        .testTarget(name: "VHDXSetsTests",
                    dependencies: ["VHDXSets", "VHDXChangeTracking", "VHDX", "VHDXFormat", "VHDXTestSupport"]),
        .testTarget(name: "VHDXExportTests",
                    dependencies: ["VHDXExport", "VHDXSets", "VHDXChangeTracking", "VHDX", "VHDXFormat", "VHDXTestSupport", "VHDXObjectStore",
                                   .product(name: "PropertyBased", package: "swift-property-based")]),
        .testTarget(name: "VHDXObjectStoreTests",
                    dependencies: ["VHDXObjectStore", "VHDXTestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "VHDXServeTests",
                    dependencies: ["VHDXServe", "VHDXExport", "VHDXSets", "VHDXChangeTracking", "VHDX", "VHDXFormat", "VHDXTestSupport",
                                   .product(name: "NIOCore", package: "swift-nio"),
                                   .product(name: "NIOPosix", package: "swift-nio")]),
    ]
)
