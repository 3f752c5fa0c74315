import VHDXFormat

/// The header update procedure of [MS-VHDX] 2.2.2.1: build the next header (sequence + 1), write
/// it over the non-current slot, flush; then once more so both slots hold current contents.
/// Headers never go through the log: they are what locates it.
enum HeaderUpdater {
    /// Writes `header` (its sequence number replaced) twice, returning the header now current
    /// and its slot.
    static func write(_ header: Header, currentSlot: Int, to storage: Storage) throws(VHDXError) -> (Header, Int) {
        var h = header
        var slot = currentSlot
        for _ in 0..<2 {
            h.sequenceNumber &+= 1
            let target = 1 - slot
            try storage.write(h.encode(), at: Layout.headerOffsets[target])
            try storage.synchronize()
            slot = target
        }
        return (h, slot)
    }
}
