import VHDXFormat

/// Replays an active sequence into the file itself (docs/vhdx-format.md §5.5): apply every update in
/// order, grow the file to the head's LastFileOffset, flush. The caller renews FileWriteGuid
/// before and marks the log applied (LogGuid = 0) after, through `HeaderUpdater`.
enum LogReplay {
    static func apply(_ sequence: LogSequence, to storage: Storage) throws(VHDXError) {
        for located in sequence.entries {
            for u in located.entry.updates {
                switch u {
                case let .data(offset, bytes):
                    try storage.write(bytes, at: offset)
                case let .zero(offset, length):
                    let chunk = [UInt8](repeating: 0, count: 1 << 20)
                    var done: UInt64 = 0
                    while done < length {
                        let n = min(UInt64(chunk.count), length - done)
                        try typed { try chunk.withUnsafeBytes { b in
                            try storage.write(UnsafeRawBufferPointer(rebasing: b[0..<Int(n)]), at: offset + done)
                        } }
                        done += n
                    }
                }
            }
        }
        if try storage.size() < sequence.head.lastFileOffset {
            try storage.resize(to: sequence.head.lastFileOffset)
        }
        try storage.synchronize()
    }
}
