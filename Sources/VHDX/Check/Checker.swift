import VHDXFormat

/// Validates a whole image and reports every problem it finds, not only the first
/// (docs/vhdx-format.md §10, plus allocation checks: BAT states, overlaps, end of file, leaks).
/// Never writes: a pending log is applied in memory for the check.
public enum Checker {
    static let maxFindingsPerStructure = 64

    package static func check(storage: Storage) throws(VHDXError) -> CheckReport {
        var report = CheckReport(path: storage.name)
        var loader = ImageLoader(storage: storage)
        defer { _ = loader }
        do {
            let (identifier, choice) = try loader.loadHeaders()
            let sequence = try loader.loadLog(header: choice.current)
            var io: Storage = storage
            if let sequence {
                io = try ReplayOverlay(base: storage, sequence: sequence)
                report.logReplay = LogReplayInfo(sequence, inMemory: true)
                loader.note(Finding(.notice, .pendingLog, "log", at: choice.current.logOffset,
                                    "a pending log of \(sequence.entries.count) entries was applied in memory for this check; a repair writes it into the file",
                                    repairable: true))
            }
            let layout = try loader.loadLayout(io: io, identifier: identifier, choice: choice)
            var bat = BATChecks(layout: layout, fileSize: try io.size())
            let table = BATTable(storage: io, regionOffset: layout.batRegion.fileOffset, entryCount: layout.batEntriesUsed)
            try table.forEachPage { (first, raw) throws(VHDXError) in bat.visit(page: raw, first: first) }
            bat.finish()
            loader.findings += bat.findings
            report.leakedBytes = try bat.findLeaks(io: io, scanLimit: try storage.size(), into: &loader.findings)
        } catch {
            report.complete = false
            if error.code == .io { throw error }
            if !loader.findings.contains(where: { !$0.openCanContinue }) {
                loader.note(Finding(.corruption, Finding.Code(error, otherwise: .unreadable), "image", at: error.fileOffset, error.message,
                                    openCanContinue: false))
            }
        }
        // Cap findings per structure so a wrecked table cannot flood the output.
        var perStructure: [String: Int] = [:]
        for f in loader.findings {
            perStructure[f.structure, default: 0] += 1
            if perStructure[f.structure]! <= maxFindingsPerStructure { report.findings.append(f) } else { report.suppressed += 1 }
        }
        return report
    }

    /// Checks the file at `path` (opened read-only, never written) and reports every problem, not only the first.
    public static func check(path: String) throws(VHDXError) -> CheckReport {
        try check(storage: try FileStorage(path: path, mode: .readOnly))
    }
}

/// Per-entry BAT rules and the allocation map they build: every object that holds file space,
/// so overlaps, duplicates, objects past the end of file and unreferenced space can be found.
struct BATChecks {
    let layout: ImageLayout
    let fileSize: UInt64
    var findings: [Finding] = []
    /// The findings that make writing unsafe: objects outside the file or inside the header
    /// section, overlaps, states the disk type cannot hold. A writable open refuses on these.
    var writeHazards: [Finding] = []
    /// The end of the last object as the format sizes it (a block cut short at EOF counts
    /// whole): where new allocations may start.
    var nominalEnd: UInt64 = Layout.headerSectionSize
    /// (start, end, what) for every object inside the file.
    var objects: [(UInt64, UInt64, String)] = []
    var partialChunks = Set<UInt64>()
    var presentBitmaps = Set<UInt64>()

    let chunkRatio: UInt64
    let dataBlockCount: UInt64

    init(layout: ImageLayout, fileSize: UInt64) {
        self.layout = layout
        chunkRatio = layout.geometry.chunkRatio
        dataBlockCount = layout.geometry.dataBlockCount
        self.fileSize = fileSize
        objects.append((0, Layout.headerSectionSize, "header section"))
        let h = layout.header
        if h.logLength > 0 { objects.append((h.logOffset, h.logOffset + UInt64(h.logLength), "log")) }
        for e in layout.regionTable.entries { objects.append((e.fileOffset, e.end, "\(KnownGUID.regionName(e.guid)) region")) }
        for (start, end, what) in objects {
            nominalEnd = max(nominalEnd, end)
            if end > fileSize {
                writeHazards.append(Finding(.corruption, .outOfBounds, "layout", at: start, "\(what) [\(start), \(end)) runs past the end of the file (\(fileSize) bytes)"))
            }
        }
    }

    /// Records a finding that also makes writing unsafe.
    private mutating func hazard(_ f: Finding) {
        findings.append(f)
        writeHazards.append(f)
    }

    /// Entries arrive in index order, so the chunk/slot position is tracked incrementally: a
    /// division per entry is most of the cost of checking a 64 TiB table.
    private var slot: UInt64 = 0
    private var chunk: UInt64 = 0

    /// A page of raw entries. The common case on a large sparse disk, a payload slot in a
    /// dataless state with no offset and no reserved bits, costs a load and two compares.
    mutating func visit(page raw: UnsafeRawBufferPointer, first: UInt64) {
        let cr = chunkRatio
        for k in 0..<raw.count / 8 {
            let entry = BATEntry.load(from: raw, index: k)
            let isSB = slot == cr
            let number = isSB ? chunk : chunk * cr + slot
            if isSB { slot = 0; chunk += 1 } else { slot += 1 }
            if !isSB, entry.isPlainDataless, entry.state == PayloadBlockState.notPresent.rawValue || number < dataBlockCount { continue }
            visit(index: first + UInt64(k), entry: entry, isSB: isSB, number: number)
        }
    }

    private mutating func visit(index: UInt64, entry: BATEntry, isSB: Bool, number: UInt64) {
        let g = layout.geometry
        let at = layout.batRegion.fileOffset + index * 8
        if entry.reservedBits != 0 {
            findings.append(Finding(.corruption, .reservedNonZero, "BAT", at: at, "entry \(index): reserved bits 3-19 are set (0x\(String(entry.raw, radix: 16)))"))
        }
        if isSB {
            switch entry.state {
            case SectorBitmapState.notPresent.rawValue:
                if entry.fileOffset != 0 {
                    findings.append(Finding(.corruption, .inconsistent, "BAT", at: at, "sector bitmap entry \(index) (chunk \(number)) is not present but has file offset \(entry.fileOffset)"))
                }
            case SectorBitmapState.present.rawValue where layout.fileParameters.hasParent:
                presentBitmaps.insert(number)
                allocate(entry.fileOffset, Layout.sectorBitmapBlockSize, "sector bitmap of chunk \(number)", at: at)
            default:
                hazard(Finding(.corruption, .invalidState, "BAT", at: at,
                                        "sector bitmap entry \(index) (chunk \(number)) has state \(entry.state), invalid for a \(layout.fileParameters.hasParent ? "differencing" : "non-differencing") disk"))
            }
            return
        }
        guard number < g.dataBlockCount else {
            if entry != .notPresent {
                findings.append(Finding(.corruption, .outOfBounds, "BAT", at: at, "entry \(index) is past the last block (\(g.dataBlockCount)) but not empty"))
            }
            return
        }
        switch PayloadBlockState(rawValue: entry.state) {
        case .fullyPresent, .partiallyPresent:
            if entry.state == PayloadBlockState.partiallyPresent.rawValue {
                if !layout.fileParameters.hasParent {
                    hazard(Finding(.corruption, .invalidState, "BAT", at: at, "block \(number) is PARTIALLY_PRESENT, invalid in a non-differencing disk"))
                }
                partialChunks.insert(number / g.chunkRatio)
            }
            // qemu tolerates a last block cut short at EOF (old qemu made such files), as long as
            // the part inside the virtual disk is there.
            let isLast = number == g.dataBlockCount - 1
            let needed = isLast ? (min(g.blockSize, layout.virtualDiskSize - number * g.blockSize).roundedUp(to: Layout.MiB) ?? g.blockSize) : g.blockSize
            allocate(entry.fileOffset, g.blockSize, "block \(number)", at: at, needed: needed)
        case .notPresent, .zero:
            if entry.fileOffset != 0 {
                findings.append(Finding(.corruption, .inconsistent, "BAT", at: at,
                                        "block \(number) is \(PayloadBlockState(rawValue: entry.state)!) but has file offset \(entry.fileOffset) (must be 0; Hyper-V rejects it)"))
            }
        case .undefined, .unmapped:
            break
        case .unmappedV095:
            findings.append(Finding(.notice, .draftState, "BAT", at: at, "block \(number) uses state 5, UNMAPPED of the 0.95 draft; read as zeros"))
        case nil:
            hazard(Finding(.corruption, .invalidState, "BAT", at: at, "block \(number) has reserved state \(entry.state)"))
        }
    }

    private mutating func allocate(_ offset: UInt64, _ length: UInt64, _ what: String, at: UInt64, needed: UInt64? = nil) {
        guard offset >= Layout.headerSectionSize else {
            hazard(Finding(.corruption, .outOfBounds, "BAT", at: at, "\(what) has file offset \(offset), inside the header section"))
            return
        }
        // Offsets come from the file: a 44-bit MiB count can overflow when a length is added.
        let (sum, overflow) = offset.addingReportingOverflow(length)
        var end = overflow ? UInt64.max : sum
        nominalEnd = max(nominalEnd, end)
        if end > fileSize, let needed, needed <= fileSize, offset <= fileSize - needed { end = fileSize }
        if end > fileSize {
            hazard(Finding(.corruption, .outOfBounds, "BAT", at: at, "\(what) at [\(offset), \(end)) runs past the end of the file (\(fileSize) bytes)"))
            return
        }
        objects.append((offset, end, what))
    }

    mutating func finish() {
        for chunk in partialChunks.sorted() where !presentBitmaps.contains(chunk) {
            let at = layout.batRegion.fileOffset + layout.geometry.sectorBitmapIndex(chunk: chunk) * 8
            hazard(Finding(.corruption, .missing, "BAT", at: at, "chunk \(chunk) has PARTIALLY_PRESENT blocks but no sector bitmap"))
        }
        objects.sort { $0.0 < $1.0 }
        var reach: (UInt64, String)? = nil
        for (start, end, what) in objects {
            if let (prevEnd, prevWhat) = reach, start < prevEnd {
                hazard(Finding(.corruption, .overlap, what.hasPrefix("block") || what.hasPrefix("sector") ? "BAT" : "layout", at: start,
                                        "\(what) [\(start), \(end)) overlaps \(prevWhat)"))
            }
            if reach == nil || end > reach!.0 { reach = (end, what) }
        }
    }

    /// Unreferenced 1 MiB units of the file that hold data: space a crash or a tool left behind.
    /// Unreferenced zero space (the slack qemu leaves at the end of a new image) is not a leak.
    /// Only the real file is scanned (`scanLimit`): past it a replayed log's LastFileOffset may
    /// claim space that reads as zeros anyway.
    mutating func findLeaks(io: Storage, scanLimit: UInt64, into out: inout [Finding]) throws(VHDXError) -> UInt64 {
        let limit = min(fileSize, scanLimit)
        var leaked: UInt64 = 0
        var cursor = Layout.headerSectionSize
        var gaps: [(UInt64, UInt64)] = []
        for (start, end, _) in objects {
            if start > cursor { gaps.append((cursor, start)) }
            cursor = max(cursor, end)
        }
        if fileSize > cursor { gaps.append((cursor, fileSize)) }
        var buffer = [UInt8](repeating: 0, count: Int(Layout.MiB))
        for (start, gapEnd) in gaps {
            let end = min(gapEnd, limit)
            guard start < end else { continue }
            var unit = start
            var runStart: UInt64?
            while unit < end {
                let n = Int(min(Layout.MiB, end - unit))
                try typed { try buffer.withUnsafeMutableBytes { b in
                    try io.read(into: UnsafeMutableRawBufferPointer(rebasing: b[0..<n]), at: unit)
                } }
                let nonZero = !buffer.withUnsafeBytes { isAllZero(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                if nonZero && runStart == nil { runStart = unit }
                if !nonZero, let s = runStart {
                    out.append(Finding(.leak, .leak, "allocation", at: s, "\(unit - s) bytes at [\(s), \(unit)) hold data but nothing references them"))
                    leaked += unit - s
                    runStart = nil
                }
                unit += UInt64(n)
            }
            if let s = runStart {
                out.append(Finding(.leak, .leak, "allocation", at: s, "\(end - s) bytes at [\(s), \(end)) hold data but nothing references them"))
                leaked += end - s
            }
        }
        return leaked
    }
}
