import VHDXFormat

/// The sector-bitmap pages (4 KiB of the file, by file offset) one image read last.
///
/// Reading through a chain asks a layer's bitmap about every sub-range the layers above leave
/// open: on a fragmented chain that is hundreds of questions per block, each of which used to
/// be a pread. Pages are kept least-recently-used, at most `maxPages` (256 KiB) per image, so
/// memory stays bounded whatever the block size (a 256 MiB block's bitmap slice is 64 KiB).
///
/// The image drops every page whenever it writes metadata or allocates space (`VHDXFile`
/// calls `removeAll`), so a writable image never answers from a page it has since changed.
final class SectorBitmapCache {
    static let pageSize: UInt64 = 4096
    static let maxPages = 64

    private var pages: [UInt64: UnsafeMutableRawBufferPointer] = [:]
    private var order: [UInt64] = []

    deinit { removeAll() }

    /// The page starting at file offset `page` (a multiple of 4 KiB), read through `io` when
    /// not cached. Valid until the next call (which may evict it) or `removeAll`.
    func page(_ page: UInt64, from io: Storage) throws(VHDXError) -> UnsafeRawBufferPointer {
        if let p = pages[page] {
            if order.last != page, let i = order.lastIndex(of: page) {
                order.remove(at: i)
                order.append(page)
            }
            return UnsafeRawBufferPointer(p)
        }
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(SectorBitmapCache.pageSize), alignment: 16)
        do {
            try io.read(into: bytes, at: page)
        } catch {
            bytes.deallocate()
            throw error
        }
        if order.count >= SectorBitmapCache.maxPages {
            let old = order.removeFirst()
            pages.removeValue(forKey: old)?.deallocate()
        }
        pages[page] = bytes
        order.append(page)
        return UnsafeRawBufferPointer(bytes)
    }

    var count: Int { pages.count }

    func removeAll() {
        for p in pages.values { p.deallocate() }
        pages.removeAll()
        order.removeAll()
    }
}
