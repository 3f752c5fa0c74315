/// Whether every byte of `buffer` is zero; word-at-a-time, since convert scans every data byte.
@inline(__always)
package func isAllZero(_ buffer: UnsafeRawBufferPointer) -> Bool {
    guard let base = buffer.baseAddress else { return true }
    let n = buffer.count
    var i = 0
    if Int(bitPattern: base) % 8 == 0 {
        while i + 32 <= n {
            let a = base.load(fromByteOffset: i, as: UInt64.self) | base.load(fromByteOffset: i + 8, as: UInt64.self)
            let b = base.load(fromByteOffset: i + 16, as: UInt64.self) | base.load(fromByteOffset: i + 24, as: UInt64.self)
            if a | b != 0 { return false }
            i += 32
        }
    }
    while i < n {
        if base.load(fromByteOffset: i, as: UInt8.self) != 0 { return false }
        i += 1
    }
    return true
}
