#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VHDX
import VHDXFormat

/// What a consolidation did.
public struct ConsolidateSummary: Sendable {
    /// The new full stream's header (it stands for the last input).
    public var header: StreamHeader
    public var inputs: Int
    /// Bytes of data and of zero ranges the new stream carries.
    public var dataBytes: UInt64 = 0
    public var zeroBytes: UInt64 = 0
    /// Data records taken over from an input unchanged (no hashing, no compression) and data
    /// records made anew (slices of input records, blocks pieced together).
    public var copiedRecords: UInt64 = 0
    public var builtRecords: UInt64 = 0
    /// The new stream's size.
    public var writtenBytes: UInt64 = 0
    public var seconds: Double = 0
    /// An upload to object storage: parts sent, and parts an interrupted earlier run had stored.
    public var uploadParts: ObjectParts?
}

/// `vhdx consolidate`: a full export and its incrementals folded into one new full stream
/// equal to restoring them, without the source disk and without an image: the inputs are read
/// front to back together and their records merged (`ChainSweep`, `RecordAssembler`).
///
/// The inputs are checked as a restore checks them: the order rules from their headers first
/// (`StreamChain.open`, restore's own), then every record of every input — CRC-32C, inflation,
/// every block's SHA-256, and each input's trailer — also the records the result does not keep.
/// Any failure is the restore's error and leaves no output (a temporary file renamed into place
/// at the end; on standard output, a stream without its trailer, which every reader refuses).
///
/// The result is a full stream (version 3, EXPORT-FORMAT.md §3) at the last input's change ID,
/// size, digest block and creation time, that names the last input as the export it stands
/// for: an incremental made on that export (`export --base INCn`) applies on it, any other is
/// refused as before.
///
/// Memory: one current record per input (at most 16 digest blocks each) plus the work in
/// flight — 4 jobs a core of at most about 2 MiB of input bodies each, their results, and the
/// writer's 32 MiB queue.
public enum Consolidator {
    /// Input bodies a job holds before it is handed to a worker.
    static let jobBytes = 2 << 20

    public static func consolidate(_ inputs: [String], to output: String, overwrite: Bool = false,
                                   progress: Exporter.Progress? = nil) throws -> ConsolidateSummary {
        let started = Clock.now()
        guard inputs.count >= 2 else {
            throw ExportError(.invalid, "consolidate folds a full export and its incrementals: give the full export and at least one incremental")
        }
        if RemoteStore.names(output) {
            if inputs.contains(output) { throw ExportError(.invalid, "refusing to write the consolidated stream over one of its inputs", path: output) }
            if !overwrite, try RemoteStore.exists(output) { throw ExportError(.invalid, "already exists (replacing it must be asked for)", path: output) }
        } else if output != "-" {
            if let out = FileIdentity(path: output), inputs.contains(where: { FileIdentity(path: $0) == out }) {
                throw ExportError(.invalid, "refusing to write the consolidated stream over one of its inputs", path: output)
            }
            try Exporter.refuseExisting(output, overwrite: overwrite)
            try refuseNonRegularOutput(output)
            try Exporter.requireWritableFolder(of: output)
        }
        let readers = try StreamChain.open(inputs)
        let last = readers.last!.header
        // An object's upload begins first: the stream is named after it, so a re-run after a
        // kill keeps the parts it had stored (see `ObjectSink.beginStream`).
        let object = RemoteStore.names(output) ? try ObjectSink(output) : nil
        var header = last
        do { header.streamID = try object?.beginStream() ?? .random() } catch {
            object?.abandon()
            throw error
        }
        header.baseID = nil
        header.baseStreamID = .zero
        header.standsFor = last.streamID
        var summary = ConsolidateSummary(header: header, inputs: readers.count)

        func body(_ sink: ByteSink) throws {
            let writer = try StreamWriter(sink: sink, header: header)
            let counts = try merge(readers, into: header, progress: progress) { r in try writer.append(r) }
            summary.copiedRecords = counts.copied
            summary.builtRecords = counts.built
            let t = try writer.finish()
            summary.dataBytes = t.dataBytes
            summary.zeroBytes = t.zeroBytes
            summary.writtenBytes = writer.written
        }
        if output == "-" {
            try body(BackgroundSink(DescriptorSink(fd: 1, name: "<stdout>")))
        } else if let sink = object {
            // Published whole by completing the upload, or not at all.
            do {
                try body(BackgroundSink(sink))
                try sink.publish()
                summary.uploadParts = sink.parts
            } catch {
                sink.abandon()
                throw error
            }
        } else {
            do {
                try writeAtomically(output, overwrite: overwrite) { (storage) throws(VHDXError) in
                    do { try body(BackgroundSink(StorageSink(storage))) } catch let e as VHDXError { throw e } catch {
                        // An input's failure (damaged, out of order): the build is abandoned, its error rethrown below.
                        throw VHDXError(.invalidArgument, "\(error)", path: output, cause: error)
                    }
                }
            } catch {
                throw Restorer.unwrap(error)
            }
        }
        summary.seconds = Clock.now() - started
        return summary
    }

    /// Merges the inputs' records into the result's, handing them to `write` in order; returns
    /// how many data records were copied whole and how many were built.
    static func merge(_ readers: [StreamReader], into header: StreamHeader, progress: Exporter.Progress?,
                      write: (EncodedRecord) throws -> Void) throws -> (copied: UInt64, built: UInt64) {
        let names = readers.map(\.name)
        let blocks = readers.map(\.header.digestBlock)
        var sweep = ChainSweep(sizes: readers.map(\.header.virtualSize)) { k in try readers[k].next() }
        var assembler = RecordAssembler(digestBlock: header.digestBlock, finalSize: header.virtualSize, inputDigestBlocks: blocks)
        let d = header.digestBlock
        let work = OrderedWork<ConsolidateJob, Result<[EncodedRecord], ExportError>> { $0.run(digestBlock: d) }
        var finished = false
        var copied: UInt64 = 0, built: UInt64 = 0
        func emit(_ specs: [RecordAssembler.Spec], into job: inout ConsolidateJob) {
            for s in specs {
                switch s {
                case .copy: copied += 1
                case .build: built += 1
                case .zero: break
                }
                job.append(.emit(s))
            }
        }
        // An input failing to read on (a truncation, its trailer) waits until the jobs before it
        // are checked: a record failing its own checks earlier is the better report.
        var later: (any Error)?
        try work.run(produce: { (n) throws in
            if let later { throw later }
            var jobs: [ConsolidateJob] = []
            var job = ConsolidateJob()
            do {
                while !finished, jobs.count < n {
                    guard let event = try sweep.next() else {
                        emit(assembler.finish(), into: &job)
                        finished = true
                        break
                    }
                    switch event {
                    case .read(let k, let r): job.append(.check(r, digestBlock: blocks[k], name: names[k]))
                    case .piece(let p): emit(assembler.add(p), into: &job)
                    }
                    if job.bytes >= jobBytes || job.tasks.count >= 256 {
                        jobs.append(job)
                        job = ConsolidateJob()
                    }
                }
            } catch {
                later = error
            }
            if !job.tasks.isEmpty { jobs.append(job) }
            if jobs.isEmpty, let later { throw later }
            return jobs
        }, consume: { (result) throws in
            for r in try result.get() {
                try write(r)
                progress?(r.offset + r.length, header.virtualSize)
            }
        })
        return (copied, built)
    }
}
