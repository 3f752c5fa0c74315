// swift-tools-version: 6.2
// A separate package that depends on swift-vhdx as a user's would: it sees only the public API
// (`package` symbols are visible inside swift-vhdx's own package, not here). PublicAPITests
// builds and runs it; its main.swift is the README's "Use it as a library" snippet.
import PackageDescription

let package = Package(
    name: "LibraryUsage",
    dependencies: [.package(name: "swift-vhdx", path: "../..")],
    targets: [
        .executableTarget(name: "LibraryUsage", dependencies: [
            .product(name: "VHDX", package: "swift-vhdx"),
            .product(name: "VHDXChangeTracking", package: "swift-vhdx"),
        ]),
    ]
)
