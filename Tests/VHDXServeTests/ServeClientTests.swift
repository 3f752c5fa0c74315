import Foundation
import Testing
import VHDXTestSupport
@testable import VHDXServe

/// The in-process server over a MemoryDisk, driven by the real clients (libnbd's nbdinfo,
/// nbdcopy and Python binding; qemu-io, qemu-img): what they see must be the disk.
@Suite(.serialized) struct ServeClientTests {
    /// 8 MiB: blocks 0, 3 and 100..<110 of 64 KiB hold a pattern, the rest is unallocated.
    static func patternedDisk(readOnly: Bool = false) -> MemoryDisk {
        MemoryDisk(size: 8 << 20, readOnly: readOnly, fill: { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) },
                   allocatedBlocks: Set([0, 3] + Array(100..<110)))
    }

    @Test func nbdinfoListsTheExport() throws {
        try Shell.require("nbdinfo")
        let s = try TestServer.start(Self.patternedDisk(), name: "mem")
        defer { try? s.stop() }
        let out = try runTool("nbdinfo --json --list '\(s.uri)'").stdout
        let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        let exports = json["exports"] as! [[String: Any]]
        #expect(exports.count == 1)
        let e = exports[0]
        #expect(e["export-name"] as? String == "mem")
        #expect(e["export-size"] as? Int == 8 << 20)
        #expect(e["block_size_minimum"] as? Int == 512)
        #expect(e["block_size_preferred"] as? Int == 4096)
        #expect(e["block_size_maximum"] as? Int == 32 << 20)
        #expect(e["description"] as? String == "a disk in memory")
        let contexts = e["contexts"] as? [String] ?? []
        #expect(contexts.contains("base:allocation"))
        #expect(contexts.contains(MemoryDisk.dirtyContext))
        #expect(e["can_multi_conn"] as? Bool == true)
        #expect(e["is_read_only"] as? Bool == false)
    }

    @Test func nbdinfoMapIsTheDisksAllocation() throws {
        try Shell.require("nbdinfo")
        let s = try TestServer.start(Self.patternedDisk())
        defer { try? s.stop() }
        let out = try runTool("nbdinfo --json --map '\(s.uri)'").stdout
        let extents = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [[String: Any]]
        let got = extents.map { [$0["offset"] as! Int, $0["length"] as! Int, $0["type"] as! Int] }
        let g = 64 << 10
        #expect(got == [[0, g, 0], [g, 2 * g, 3], [3 * g, g, 0], [4 * g, 96 * g, 3], [100 * g, 10 * g, 0], [110 * g, (8 << 20) - 110 * g, 3]])
    }

    @Test func nbdcopyPullsTheBytes() throws {
        try Shell.require("nbdcopy")
        let disk = Self.patternedDisk(readOnly: true)
        let s = try TestServer.start(disk)
        defer { try? s.stop() }
        let out = Fixtures.tempPath("pulled.raw")
        defer { unlink(out) }
        try runTool("nbdcopy '\(s.uri)' '\(out)'")
        let pulled = try [UInt8](Data(contentsOf: URL(fileURLWithPath: out)))
        #expect(sameBytes(pulled, disk.bytes))
    }

    /// A server-wide budget far smaller than nbdcopy keeps in flight: requests wait for it
    /// (`InFlightBudget`) and are resumed as others finish; every byte still arrives.
    @Test func requestsWaitingForTheServerBudgetAllComplete() throws {
        try Shell.require("nbdcopy")
        let disk = Self.patternedDisk(readOnly: true)
        let s = try TestServer.start(disk) { $0.maxInFlightBytesTotal = 64 << 10 }
        defer { try? s.stop() }
        let out = Fixtures.tempPath("pulled.raw")
        defer { unlink(out) }
        try runTool("nbdcopy --connections=4 --requests=16 '\(s.uri)' '\(out)'")
        let pulled = try [UInt8](Data(contentsOf: URL(fileURLWithPath: out)))
        #expect(sameBytes(pulled, disk.bytes))
    }

    @Test func pythonLibnbdDrivesEveryCommand() throws {
        let disk = Self.patternedDisk()
        let s = try TestServer.start(disk)
        defer { try? s.stop() }
        let script = """
            import nbd, sys, json
            h = nbd.NBD()
            h.add_meta_context("base:allocation")
            h.connect_uri(sys.argv[1])
            out = {}
            out["size"] = h.get_size()
            out["read0"] = list(h.pread(512, 0)[:16])
            h.pwrite(b"\\xab" * 8192, 1 << 20)
            h.pwrite(b"\\xcd" * 4096, 2 << 20, nbd.CMD_FLAG_FUA)
            h.flush()
            out["back"] = h.pread(8192, 1 << 20) == b"\\xab" * 8192
            h.trim(65536, 6 << 20)
            h.zero(65536, 7 << 20)
            out["zeroed"] = h.pread(65536, 7 << 20) == bytes(65536)
            ext = []
            def cb(meta, offset, entries, err):
                ext.append((meta, offset, list(entries)))
                return 0
            h.block_status(8 << 20, 0, cb, nbd.CMD_FLAG_REQ_ONE)
            out["one"] = ext
            ext2 = []
            def cb2(meta, offset, entries, err):
                ext2.append(list(entries))
                return 0
            h.block_status(8 << 20, 0, cb2)
            out["all"] = ext2
            # The server's own checks, not libnbd's: bounds and alignment are left to it.
            h.set_strict_mode(0)
            try:
                h.pread(16, 0)
                out["unaligned"] = "no error"
            except nbd.Error as e:
                out["unaligned"] = e.errnum
            try:
                h.pread(512, 8 << 20)
                out["past_end"] = "no error"
            except nbd.Error as e:
                out["past_end"] = e.errnum
            h.shutdown()
            print(json.dumps(out))
            """
        let path = Fixtures.tempPath("client.py")
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try runTool("/usr/bin/python3 '\(path)' '\(s.uri)'", allowFailure: true)
        #expect(run.status == 0, "\(run.stderr)")
        let out = run.stdout
        let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        #expect(json["size"] as? Int == 8 << 20)
        #expect(json["read0"] as? [Int] == Array(disk.bytes[0..<16]).map(Int.init))
        #expect(json["back"] as? Bool == true)
        #expect(json["zeroed"] as? Bool == true)
        #expect(json["past_end"] as? Int == Int(EINVAL))
        #expect(json["unaligned"] as? Int == Int(EINVAL))
        // REQ_ONE: one descriptor, block 0 (data, 64 KiB).
        let one = json["one"] as! [[Any]]
        #expect(one.count == 1)
        #expect(one[0][0] as? String == "base:allocation")
        #expect(one[0][2] as? [Int] == [65536, 0])
        let all = (json["all"] as! [[Int]])[0]
        #expect(all.count % 2 == 0 && all.count >= 6)
        #expect(all.enumerated().filter { $0.offset % 2 == 0 }.map(\.element).reduce(0, +) == 8 << 20)
        disk.snapshot { st in
            #expect(st.writes == 2 && st.fuaWrites == 1 && st.flushes == 1 && st.trims == 1)
            #expect(st.zeroes.count == 1 && st.zeroes[0].mayDeallocate)
        }
        let bytes = disk.bytes
        #expect(bytes[1 << 20] == 0xAB && bytes[(2 << 20) + 4095] == 0xCD)
    }

    /// The client over the limit is refused cleanly: libnbd reports NBD_REP_ERR_SHUTDOWN in its
    /// own words (the reason, in the reply's message, is in the server's log).
    @Test func nbdinfoOverTheLimitIsToldWhy() throws {
        try Shell.require("nbdinfo")
        let s = try TestServer.start(Self.patternedDisk(), maxConnections: 1)
        defer { try? s.stop() }
        let held = try RawClient(socket: s.socket)
        try held.negotiate()
        let r = try runTool("nbdinfo --size '\(s.uri)'", allowFailure: true)
        #expect(r.status != 0)
        #expect(r.stderr.contains("server is shutting down"), "\(r.stderr)")
        _ = held
    }

    /// TCP on a loopback port the system picks; the URI carries it.
    @Test func tcpLoopback() throws {
        try Shell.require("nbdinfo")
        var c = NBDServerConfiguration(endpoint: .tcp(host: "127.0.0.1", port: 0), exportName: "tcp")
        c.diskThreads = 2
        c.eventLoopThreads = 1
        let server = try NBDServer.start(disk: Self.patternedDisk(), configuration: c)
        defer { try? server.stop() }
        guard case .tcp("127.0.0.1", let port) = server.endpoint else { throw TestFailure("\(server.endpoint)") }
        #expect(port > 0 && server.uri == "nbd://127.0.0.1:\(port)/tcp")
        #expect(try runTool("nbdinfo --size '\(server.uri)'").stdout.hasPrefix("\(8 << 20)"))
    }

    @Test func qemuWritesAndCompares() throws {
        try Shell.require("qemu-io")
        let disk = Self.patternedDisk()
        let s = try TestServer.start(disk, name: "")
        defer { try? s.stop() }
        let uri = "nbd+unix:///?socket=\(s.socket)"
        try runTool("qemu-io -f raw -c 'write -P 0x55 64k 64k' -c 'write -z 1M 128k' -c 'discard 2M 64k' '\(uri)'")
        let bytes = disk.bytes
        #expect(bytes[(64 << 10)..<(128 << 10)].allSatisfy { $0 == 0x55 })
        #expect(bytes[(1 << 20)..<((1 << 20) + (128 << 10))].allSatisfy { $0 == 0 })
        let raw = Fixtures.tempPath("qemu.raw")
        defer { unlink(raw) }
        try runTool("qemu-img convert -f raw -O raw '\(uri)' '\(raw)'")
        #expect(sameBytes(try [UInt8](Data(contentsOf: URL(fileURLWithPath: raw))), bytes))
        try runTool("qemu-img compare -f raw -F raw '\(uri)' '\(raw)'")
    }
}
