import VHDXChangeTracking
import VHDXFormat

/// A change ID's 48-byte binary form in stream headers and origin records: disk id, tracking
/// id, generation, 4 reserved bytes, epoch. All zeros is "none".
enum ChangeIDCodec {
    static let size = 48

    static func write(_ id: ChangeID?, into w: inout ByteWriter) {
        guard let id else { w.writeZeros(size); return }
        w.write(id.virtualDiskID)
        w.write(id.trackingID)
        w.write(id.generation)
        w.write(UInt32(0))
        w.write(id.epoch)
    }

    static func read(_ r: inout ByteReader, _ field: String) throws(FormatError) -> ChangeID? {
        let disk = try r.readGUID(field)
        let tracking = try r.readGUID(field)
        let generation = try r.readUInt32(field)
        _ = try r.readUInt32(field)
        let epoch = try r.readUInt64(field)
        if disk == .zero && tracking == .zero && generation == 0 && epoch == 0 { return nil }
        return ChangeID(virtualDiskID: disk, trackingID: tracking, generation: generation, epoch: epoch)
    }
}
