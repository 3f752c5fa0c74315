/// Reads a stream's records in order on the caller's thread and checks their bodies (CRC-32C,
/// inflation, block digests) on every core, handing each extent to `consume` in order.
enum StreamDecoder {
    static func forEach(_ reader: StreamReader, _ consume: (DecodedExtent) throws -> Void) throws {
        let d = reader.header.digestBlock, name = reader.name
        let work = OrderedWork<RawRecord, Result<DecodedExtent, ExportError>> { DecodedExtent.decode($0, digestBlock: d, name: name) }
        // An error reading on (the trailer not matching, a truncation) waits until the records
        // read before it are checked: one of those failing its own checks is the better report.
        var later: (any Error)?
        try work.run(produce: { (n) throws in
            if let later { throw later }
            var batch: [RawRecord] = []
            var bytes = 0
            // A batch holds at most 32 MiB of bodies (zero records have none).
            do {
                while batch.count < n || bytes == 0 && batch.count < 4 * n, bytes < 32 << 20, let r = try reader.next() {
                    batch.append(r)
                    bytes += r.digests.count + r.payload.count
                }
            } catch where !batch.isEmpty {
                later = error
            }
            return batch
        }, consume: { (r) throws in try consume(r.get()) })
    }
}
