import Foundation
import VHDX

/// Storage over another whose reads fail with EIO (a bad sector, a transient device error) where
/// they touch `failing` while `armed`; writes pass through and are counted, so a test can show
/// that a read fault made nothing write.
public final class ReadFaultStorage: Storage {
    package let base: Storage
    public var failing: Range<UInt64>
    public var armed = true
    public private(set) var writes = 0
    public private(set) var faults = 0

    package init(_ base: Storage, failing: Range<UInt64>) {
        self.base = base
        self.failing = failing
    }

    public var isWritable: Bool { base.isWritable }
    public var name: String { base.name }
    public func size() throws(VHDXError) -> UInt64 { try base.size() }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        if armed, offset < failing.upperBound, offset + UInt64(buffer.count) > failing.lowerBound {
            faults += 1
            throw VHDXError(.io, "simulated EIO reading \(buffer.count) bytes", path: name, at: offset, cause: POSIXError(.EIO))
        }
        try base.read(into: buffer, at: offset)
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        writes += 1
        try base.write(buffer, at: offset)
    }

    public func resize(to size: UInt64) throws(VHDXError) {
        writes += 1
        try base.resize(to: size)
    }

    public func synchronize() throws(VHDXError) { try base.synchronize() }
}
