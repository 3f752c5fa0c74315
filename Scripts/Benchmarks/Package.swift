// swift-tools-version: 6.2
// The benchmark driver for Scripts/bench-*.sh, as a package of its own so that a plain
// `swift build` of swift-vhdx does not build it. It uses the engine through its public
// products, by path:
//   swift build -c release --package-path Scripts/Benchmarks
import PackageDescription

let package = Package(
    name: "swift-vhdx-benchmarks",
    dependencies: [
        .package(name: "swift-vhdx", path: "../.."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .executableTarget(
            name: "VHDXBench",
            dependencies: [
                .product(name: "VHDX", package: "swift-vhdx"),
                .product(name: "VHDXChangeTracking", package: "swift-vhdx"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
    ]
)
