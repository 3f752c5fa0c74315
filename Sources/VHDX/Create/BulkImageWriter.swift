import VHDXFormat

/// Builds a new VHDX on empty storage from writes in any order, without the log: like
/// `VHDXConverter`, the file is a temporary one nobody sees until it is complete, flushed and
/// renamed, so a crash leaves only a temporary behind. A restore writes a full export and then
/// its incrementals over it through this.
///
/// Blocks are allocated at the end on their first non-zero byte (dynamic) or all up front
/// (fixed). Each block remembers how far into it anything was written (its high-water mark):
/// bytes past it are still the file's sparse zeros, so zero 4 KiB runs there are skipped, and
/// a zero range only writes below it. Extra non-required regions (an export's origin record)
/// are placed after the payload when the image is finished.
package final class BulkImageWriter {
    package let options: CreateOptions
    let storage: Storage
    let plan: PlannedLayout
    /// Per data block: its file offset and high-water mark, once allocated.
    private var blocks: [UInt64: (offset: UInt64, mark: UInt64)] = [:]
    private var next: UInt64
    private var regions: [(GUID, [UInt8])] = []
    /// The image's DataWriteGuid.
    package let dataWriteGUID = GUID.random()
    /// Writeback started behind the writes (a file output).
    private let pacer: WritebackPacer?

    package init(storage: Storage, options: CreateOptions) throws(VHDXError) {
        self.storage = storage
        self.options = options
        plan = try PlannedLayout(options)
        next = plan.payloadStart
        pacer = (storage as? FileStorage).map(WritebackPacer.init)
        var builder = ImageBuilder(storage: storage, options: options, plan: plan)
        builder.dataWriteGUID = dataWriteGUID
        try builder.writeStructures()
    }

    package var virtualSize: UInt64 { options.virtualSize }
    var blockSize: UInt64 { plan.geometry.blockSize }

    /// Writes `data` at virtual `offset` (within the disk).
    package func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(VHDXError) {
        guard offset <= virtualSize, UInt64(data.count) <= virtualSize - offset else {
            throw VHDXError(.outOfBounds, "a write of \(data.count) bytes at \(offset) reaches past the \(virtualSize)-byte disk", path: storage.name)
        }
        var done = 0
        while done < data.count {
            let v = offset + UInt64(done)
            let block = v / blockSize, inBlock = v % blockSize
            let n = Int(min(UInt64(data.count - done), blockSize - inBlock))
            try writeInBlock(block, inBlock, UnsafeRawBufferPointer(rebasing: data[done..<done + n]))
            done += n
        }
        pacer?.wrote(UInt64(data.count))
    }

    /// Where `[offset, offset + length)` goes in the file, block by block (allocating blocks as
    /// needed), for a caller that copies the bytes itself (in the kernel); they count as
    /// written, zeros included.
    package func place(at offset: UInt64, length: UInt64) throws(VHDXError) -> [(virtual: UInt64, file: UInt64, count: UInt64)] {
        guard offset <= virtualSize, length <= virtualSize - offset else {
            throw VHDXError(.outOfBounds, "\(length) bytes at \(offset) reach past the \(virtualSize)-byte disk", path: storage.name)
        }
        var out: [(UInt64, UInt64, UInt64)] = []
        var v = offset
        while v < offset + length {
            let block = v / blockSize, inBlock = v % blockSize
            let n = min(offset + length - v, blockSize - inBlock)
            var entry = blocks[block]
            if entry == nil {
                entry = options.fixed ? (fixedOffset(block), 0) : (next, 0)
                if !options.fixed { next += blockSize }
            }
            blocks[block] = (entry!.offset, max(entry!.mark, inBlock + n))
            out.append((v, entry!.offset + inBlock, n))
            v += n
        }
        return out
    }

    /// Makes `[offset, offset + length)` read as zeros.
    package func zero(at offset: UInt64, length: UInt64) throws(VHDXError) {
        guard offset <= virtualSize, length <= virtualSize - offset else {
            throw VHDXError(.outOfBounds, "zeroing \(length) bytes at \(offset) reaches past the \(virtualSize)-byte disk", path: storage.name)
        }
        var v = offset
        while v < offset + length {
            let block = v / blockSize, inBlock = v % blockSize
            let n = min(offset + length - v, blockSize - inBlock)
            if let b = blocks[block], inBlock < b.mark {
                try storage.writeZeros(offset: b.offset + inBlock, length: min(n, b.mark - inBlock))
            }
            v += n
        }
    }

    /// A non-required region of our own, written after the payload when the image is finished
    /// (`bytes` padded to a whole MiB).
    package func addRegion(_ guid: GUID, bytes: [UInt8]) {
        regions.append((guid, bytes))
    }

    /// Writes the BAT (and any extra regions with the region tables naming them) and sizes
    /// the file. The caller flushes and publishes it.
    package func finish() throws(VHDXError) {
        let g = plan.geometry
        try ImageBuilder(storage: storage, options: options, plan: plan).writeBAT { (i) throws(VHDXError) -> BATEntry in
            let (isSB, block) = g.classify(index: i)
            guard !isSB, block < g.dataBlockCount else { return .notPresent }
            if options.fixed { return try .dataBlock(at: fixedOffset(block)) }
            guard let b = blocks[block] else { return .notPresent }
            return try .dataBlock(at: b.offset)
        }
        var end = options.fixed ? plan.payloadStart + g.dataBlockCount * g.blockSize : max(next, plan.payloadStart)
        if !regions.isEmpty {
            var table = RegionTable(entries: [
                RegionTableEntry(guid: KnownGUID.batRegion, fileOffset: plan.batOffset, length: plan.batLength, required: true),
                RegionTableEntry(guid: KnownGUID.metadataRegion, fileOffset: plan.metadataOffset, length: plan.metadataLength, required: true),
            ])
            for (guid, bytes) in regions {
                let length = max(Layout.MiB, (UInt64(bytes.count) + Layout.MiB - 1) / Layout.MiB * Layout.MiB)
                try storage.write(bytes, at: end)
                table.entries.append(RegionTableEntry(guid: guid, fileOffset: end, length: UInt32(length), required: false))
                end += length
            }
            let tableBytes = table.encode()
            for off in Layout.regionTableOffsets { try storage.write(tableBytes, at: off) }
        }
        try storage.resize(to: end)
    }

    private func fixedOffset(_ block: UInt64) -> UInt64 { plan.payloadStart + block * blockSize }

    private func writeInBlock(_ block: UInt64, _ inBlock: UInt64, _ piece: UnsafeRawBufferPointer) throws(VHDXError) {
        var entry = blocks[block]
        if entry == nil {
            if options.fixed {
                entry = (fixedOffset(block), 0)
            } else {
                if isAllZero(piece) { return }
                entry = (next, 0)
                next += blockSize
            }
        }
        let (at, mark) = entry!
        let end = inBlock + UInt64(piece.count)
        // Below the mark: earlier bytes are replaced, zeros included.
        if inBlock < mark {
            let n = Int(min(end, mark) - inBlock)
            try storage.write(UnsafeRawBufferPointer(rebasing: piece[0..<n]), at: at + inBlock)
        }
        // Past it: still sparse zeros, so only the 4 KiB runs holding data are written.
        let from = Int(max(inBlock, mark) - inBlock)
        if from < piece.count {
            try writeNonZero(UnsafeRawBufferPointer(rebasing: piece[from...]), at: at + inBlock + UInt64(from))
        }
        blocks[block] = (at, max(mark, end))
    }

    private func writeNonZero(_ chunk: UnsafeRawBufferPointer, at fileOffset: UInt64) throws(VHDXError) {
        try RawConverter.writeNonZeroRuns(storage, chunk, at: fileOffset)
    }
}
