import Foundation
import VHDX

/// Storage in memory that fails like a full disk: the `failAt`-th mutation (write or resize,
/// counted from 0) throws ENOSPC; what fails after it depends on `mode`. Flushes succeed:
/// nothing is lost, so what the engine leaves is exactly what `bytes` holds.
public final class FailingStorage: Storage {
    public private(set) var bytes: [UInt8]
    public var failAt: Int?
    public enum Mode: Sendable, CaseIterable {
        /// Only that mutation fails (space was freed meanwhile).
        case once
        /// Every later mutation that grows the file fails too, as on a full file system;
        /// overwrites inside the file still succeed.
        case growth
        /// Every later mutation fails (the device is gone): nothing can be cleaned up.
        case everything
    }
    public var mode: Mode = .once
    public private(set) var mutations = 0
    public private(set) var failed = false

    public var isWritable: Bool { true }
    public var name: String { "<failing>" }

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    private func check(grows: Bool, at offset: UInt64?) throws(VHDXError) {
        defer { mutations += 1 }
        if mutations == failAt || (failed && (mode == .everything || (mode == .growth && grows))) {
            failed = true
            throw VHDXError(.io, "simulated ENOSPC at mutation \(mutations)", path: name, at: offset, cause: POSIXError(.ENOSPC))
        }
    }

    public func size() throws(VHDXError) -> UInt64 { UInt64(bytes.count) }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        guard offset <= UInt64(bytes.count), UInt64(buffer.count) <= UInt64(bytes.count) - offset else {
            throw VHDXError(.outOfBounds, "read past end", at: offset)
        }
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count])) }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        let end = Int(offset) + buffer.count
        try check(grows: end > bytes.count, at: offset)
        if end > bytes.count { bytes.append(contentsOf: [UInt8](repeating: 0, count: end - bytes.count)) }
        bytes.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[Int(offset)..<end]).copyMemory(from: buffer) }
    }

    public func resize(to size: UInt64) throws(VHDXError) {
        try check(grows: Int(size) > bytes.count, at: nil)
        if Int(size) < bytes.count { bytes.removeLast(bytes.count - Int(size)) } else { bytes.append(contentsOf: [UInt8](repeating: 0, count: Int(size) - bytes.count)) }
    }

    public func synchronize() throws(VHDXError) {}
}
