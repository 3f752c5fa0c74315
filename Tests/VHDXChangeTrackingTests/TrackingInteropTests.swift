import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXFormat
import VHDXTestSupport

/// Change tracking seen from outside: a tracked image is still a VHDX every other reader takes
/// (qemu-img, libvhdi, 7-Zip), writers that bypass tracking (qemu-io, the engine without a
/// tracker) reset it, a writer killed with SIGKILL leaves answers that still cover every byte
/// it wrote, and each question that cannot be answered gets exit 4 with its own reason.
///
/// Everything goes through the `vhdx` CLI (as a backup tool would), except where a test needs
/// the engine itself. Disks are small (a few MiB, 1 MiB blocks, 512-byte sectors for qemu, a
/// multiple of 4096 bytes for 7-Zip).
@Suite("Tracking interop", .serialized)
struct TrackingInteropTests {
    static let MiB: UInt64 = 1 << 20

    // MARK: - CLI helpers

    @discardableResult
    static func vhdx(_ args: String, allowFailure: Bool = false) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: allowFailure)
    }

    static func create(_ size: UInt64, name: String, track: Bool = true, options: String = "") throws -> String {
        let image = Fixtures.tempPath(name)
        try vhdx("create '\(image)' \(size) --block-size 1M --logical-sector-size 512")
        if track { try vhdx("track enable '\(image)'\(options.isEmpty ? "" : " " + options)") }
        return image
    }

    static func seal(_ image: String) throws -> String {
        let id = try vhdx("track seal '\(image)'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard ChangeID(text: id) != nil else { throw TestFailure("track seal printed \(id.debugDescription), not a change ID") }
        return id
    }

    /// `track changes --since id`: the exit status, the ranges (text form) and stderr.
    static func changes(_ image: String, since id: String) throws -> (status: Int32, ranges: [Range<UInt64>], stderr: String) {
        let r = try vhdx("track changes '\(image)' --since '\(id)'", allowFailure: true)
        var ranges: [Range<UInt64>] = []
        if r.status == 0 {
            for line in r.stdout.split(separator: "\n") {
                let f = line.split(separator: " ")
                guard f.count == 2, let o = UInt64(f[0]), let l = UInt64(f[1]) else {
                    throw TestFailure("track changes printed \(line.debugDescription)")
                }
                ranges.append(o..<o + l)
            }
        }
        return (r.status, ranges, r.stderr)
    }

    static func status(_ image: String) throws -> [String: Any] {
        let out = try vhdx("track status --json '\(image)'").stdout
        guard let obj = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] else {
            throw TestFailure("track status --json printed \(out)")
        }
        return obj
    }

    // MARK: - Byte model

    /// The disk's content as the tests expect it, in memory (small disks only).
    final class Model {
        var bytes: [UInt8]
        init(size: UInt64) { bytes = [UInt8](repeating: 0, count: Int(size)) }
        func set(_ data: [UInt8], at o: UInt64) { bytes.replaceSubrange(Int(o)..<Int(o) + data.count, with: data) }
        func fill(_ b: UInt8, at o: UInt64, length l: UInt64) { set([UInt8](repeating: b, count: Int(l)), at: o) }
        func save() throws -> String {
            let path = Fixtures.tempPath("model.raw")
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw TestFailure("cannot write \(path)") }
            return path
        }
    }

    static func randomBytes(seed: UInt64, count: Int) -> [UInt8] {
        var rng = SplitMix(seed: seed)
        var words = [UInt64](repeating: 0, count: (count + 7) / 8)
        for i in words.indices { words[i] = rng.next() }
        return words.withUnsafeBytes { Array($0.prefix(count)) }
    }

    static func writeFile(_ bytes: [UInt8]) throws -> String {
        let path = Fixtures.tempPath("input.bin")
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw TestFailure("cannot write \(path)") }
        return path
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        guard let d = FileManager.default.contents(atPath: path) else { throw TestFailure("cannot read \(path)") }
        return [UInt8](d)
    }


    /// The first bytes where `a` and `b` differ outside `ranges` (sorted or not), at most `limit`
    /// of them, and how many bytes differ in all.
    static func uncovered(_ a: [UInt8], _ b: [UInt8], ranges: [Range<UInt64>], limit: Int = 8) -> (missed: [UInt64], differing: UInt64) {
        precondition(a.count == b.count)
        let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
        var missed: [UInt64] = []
        var differing: UInt64 = 0
        var r = 0
        let page = 4096
        a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in
                var p = 0
                while p < a.count {
                    let n = min(page, a.count - p)
                    defer { p += n }
                    if memcmp(x.baseAddress! + p, y.baseAddress! + p, n) == 0 { continue }
                    while r < sorted.count && sorted[r].upperBound <= UInt64(p) { r += 1 }
                    let whole = r < sorted.count && sorted[r].lowerBound <= UInt64(p) && sorted[r].upperBound >= UInt64(p + n)
                    var k = r
                    for i in p..<p + n where x[i] != y[i] {
                        differing += 1
                        if whole { continue }
                        while k < sorted.count && sorted[k].upperBound <= UInt64(i) { k += 1 }
                        let covered = k < sorted.count && sorted[k].contains(UInt64(i))
                        if !covered && missed.count < limit { missed.append(UInt64(i)) }
                    }
                }
            }
        }
        return (missed, differing)
    }

    // MARK: - 1. Other readers take a tracked image

    @Test("a tracked image (writes, seals, trim, zero) passes qemu-img check and reads the same in qemu, vhdx, libvhdi and 7-Zip")
    func trackedImageInterop() throws {
        try Shell.require("qemu-img"); try Shell.require("7zz"); try Shell.require("/usr/bin/python3")
        let size = 12 * Self.MiB  // a multiple of 4096: 7-Zip opens it
        let image = try Self.create(size, name: "interop.vhdx")
        defer { unlink(image) }
        let model = Model(size: size)

        try Self.vhdx("write '\(image)' --offset 1000 --pattern 0xa1 --length 70000")
        model.fill(0xA1, at: 1000, length: 70000)
        let r1 = Self.randomBytes(seed: 1, count: 1_500_000)
        let f1 = try Self.writeFile(r1)
        defer { unlink(f1) }
        try Self.vhdx("write '\(image)' --offset \(3 * Self.MiB + 17) --input '\(f1)'")
        model.set(r1, at: 3 * Self.MiB + 17)
        let id1 = try Self.seal(image)
        let atID1 = model.bytes

        try Self.vhdx("write '\(image)' --offset \(5 * Self.MiB - 100) --pattern 0xb2 --length 300000")
        model.fill(0xB2, at: 5 * Self.MiB - 100, length: 300_000)
        let r2 = Self.randomBytes(seed: 2, count: 200_000)
        let f2 = try Self.writeFile(r2)
        defer { unlink(f2) }
        try Shell.run("cat '\(f2)' | '\(try vhdxBinary())' write '\(image)' --offset \(9 * Self.MiB + 5) --input -")
        model.set(r2, at: 9 * Self.MiB + 5)
        let id2 = try Self.seal(image)
        #expect(id2 != id1)

        try Self.vhdx("write '\(image)' --offset \(11 * Self.MiB + 4096) --pattern 0xc3 --length 8192")
        model.fill(0xC3, at: 11 * Self.MiB + 4096, length: 8192)
        // A whole block trimmed reads as zeros on a dynamic disk; a zeroed range does anyway.
        try Self.vhdx("write '\(image)' --offset \(3 * Self.MiB) --trim --length \(Self.MiB)")
        model.fill(0, at: 3 * Self.MiB, length: Self.MiB)
        try Self.vhdx("write '\(image)' --offset 1500 --zero --length 20000")
        model.fill(0, at: 1500, length: 20000)
        // And the engine with its tracker attached: open, write, close.
        do {
            let f = try VHDXFile.openFile(path: image, writable: true)
            #expect(try ChangeTracker.attach(to: f) != nil)
            let r3 = Self.randomBytes(seed: 3, count: 5000)
            try f.write(r3, at: 7 * Self.MiB + 333)
            model.set(r3, at: 7 * Self.MiB + 333)
            try f.close()
        }

        // Tracking is really there, and answers.
        let st = try Self.status(image)
        #expect(st["enabled"] as? Bool == true)
        #expect(st["latest-id"] as? String == id2)

        let modelRaw = try model.save()
        defer { unlink(modelRaw) }
        let expected = try Shell.sha256(file: modelRaw)

        let check = try Self.vhdx("check '\(image)'", allowFailure: true)
        #expect(check.status == 0, "vhdx check: exit \(check.status)\n\(check.stdout)\(check.stderr)")
        let qcheck = try Shell.run("qemu-img check -f vhdx '\(image)'", allowFailure: true)
        #expect(qcheck.status == 0, "qemu-img check: exit \(qcheck.status)\n\(qcheck.stdout)\(qcheck.stderr)")

        let qraw = Fixtures.tempPath("qemu.raw"), vraw = Fixtures.tempPath("vhdx.raw")
        defer { unlink(qraw); unlink(vraw) }
        try Shell.run("qemu-img convert -f vhdx -O raw '\(image)' '\(qraw)'")
        try Self.vhdx("convert '\(image)' '\(vraw)'")
        let qsha = try Shell.sha256(file: qraw), vsha = try Shell.sha256(file: vraw)
        #expect(qsha == expected, "qemu-img convert -O raw differs from the model")
        #expect(vsha == expected, "vhdx convert differs from the model")
        #expect(qsha == vsha, "qemu-img convert and vhdx convert differ")

        let py = """
            import hashlib,sys,pyvhdi
            f=pyvhdi.file(); f.open(sys.argv[1])
            n=f.get_media_size(); h=hashlib.sha256(); o=0
            while o<n:
                b=f.read_buffer_at_offset(min(1<<20,n-o),o); h.update(b); o+=len(b)
            print(n, h.hexdigest())
            """
        let lib = try Shell.run("/usr/bin/python3 -c '\(py)' '\(image)'")
        #expect(lib.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(size) \(expected)", "libvhdi: \(lib.stdout)\(lib.stderr)")

        let seven = try Shell.run("set -o pipefail; 7zz x -tvhdx -so '\(image)' 2>/dev/null | \(Shell.sha256Command) -", allowFailure: true)
        #expect(seven.status == 0, "7-Zip could not extract the tracked image: \(seven.stderr)")
        #expect(String(seven.stdout.prefix(64)) == expected, "7-Zip's content differs from the model")

        // Readers that opened it read-only did not reset tracking, and the answer since id1
        // covers every byte changed since then.
        let c = try Self.changes(image, since: id1)
        #expect(c.status == 0, "track changes after the oracles read the image: exit \(c.status): \(c.stderr)")
        let (missed, differing) = Self.uncovered(atID1, model.bytes, ranges: c.ranges)
        #expect(differing > 0)
        #expect(missed.isEmpty, "changed bytes outside the answer since id1: \(missed)")
    }

    // MARK: - 2, 3. Writers that bypass tracking reset it

    /// Makes a tracked image with a sealed, answerable ID, lets `outside` write to it, and checks
    /// that the ID is answered "tracking reset" naming the outside writer, that status shows it,
    /// and that a new seal answers again, exactly the granules written after it.
    static func outsideWriterResets(_ label: String, outside: (String) throws -> Void,
                                    sourceLocation: SourceLocation = #_sourceLocation) throws {
        let image = try create(8 * MiB, name: "outside.vhdx")
        defer { unlink(image) }
        try vhdx("write '\(image)' --offset 0 --pattern 0x11 --length \(3 * MiB)")
        let id1 = try seal(image)
        try vhdx("write '\(image)' --offset \(4 * MiB) --pattern 0x22 --length 100000")
        let before = try changes(image, since: id1)
        #expect(before.status == 0 && !before.ranges.isEmpty, "\(label): the ID answers before the outside write: \(before.stderr)", sourceLocation: sourceLocation)

        let generation = try status(image)["generation"] as? Int ?? -1
        try outside(image)

        let after = try changes(image, since: id1)
        #expect(after.status == 4, "\(label): track changes exit \(after.status), not 4 (ranges \(after.ranges))", sourceLocation: sourceLocation)
        #expect(after.stderr.contains("tracking reset") && after.stderr.contains("modified outside change tracking"),
                "\(label): stderr does not name the outside writer: \(after.stderr)", sourceLocation: sourceLocation)

        let st = try status(image)
        let reset = st["last-reset"] as? [String: Any]
        #expect((reset?["reason"] as? String)?.contains("modified outside change tracking") == true,
                "\(label): status shows no reset: \(st)", sourceLocation: sourceLocation)
        #expect(st["latest-id"] is NSNull, "\(label): status still offers a latest ID: \(st)", sourceLocation: sourceLocation)
        #expect((st["retained-ids"] as? [Any])?.isEmpty == true, "\(label): status still retains IDs: \(st)", sourceLocation: sourceLocation)

        let id2 = try seal(image)
        #expect(id2 != id1, sourceLocation: sourceLocation)
        let st2 = try status(image)
        #expect(st2["latest-id"] as? String == id2, "\(label): \(st2)", sourceLocation: sourceLocation)
        #expect((st2["generation"] as? Int ?? -1) > generation, "\(label): the reset did not start a new generation: \(st2)", sourceLocation: sourceLocation)
        #expect(((st2["last-reset"] as? [String: Any])?["reason"] as? String)?.contains("modified outside change tracking") == true,
                "\(label): the reset was not recorded: \(st2)", sourceLocation: sourceLocation)

        // Tracked writes after the new seal: exactly their 64 KiB granules come back.
        try vhdx("write '\(image)' --offset \(5 * MiB + 100) --pattern 0x33 --length 1000")
        try vhdx("write '\(image)' --offset \(7 * MiB) --pattern 0x44 --length 70000")
        let again = try changes(image, since: id2)
        #expect(again.status == 0, "\(label): the new ID does not answer: \(again.stderr)", sourceLocation: sourceLocation)
        let g: UInt64 = 64 << 10
        #expect(again.ranges == [5 * MiB..<5 * MiB + g, 7 * MiB..<7 * MiB + 2 * g],
                "\(label): since the new seal: \(again.ranges)", sourceLocation: sourceLocation)
        // The old ID stays unanswerable.
        let old = try changes(image, since: id1)
        #expect(old.status == 4 && old.stderr.contains("tracking reset"), "\(label): old ID: exit \(old.status) \(old.stderr)", sourceLocation: sourceLocation)
    }

    @Test("a write by qemu-io resets tracking: exit 4 naming the outside writer, then a new seal answers")
    func qemuIOWriteResets() throws {
        try Shell.require("qemu-io")
        try Self.outsideWriterResets("qemu-io") { image in
            let r = try Shell.run("qemu-io -f vhdx -c 'write -q -P 0x5a \(2 * Self.MiB) 65536' '\(image)'", allowFailure: true)
            #expect(r.status == 0 && !r.stdout.contains("failed") && !r.stderr.contains("failed"), "qemu-io write: \(r.stdout)\(r.stderr)")
        }
    }

    @Test("a write through the engine without a tracker resets tracking the same way")
    func untrackedEngineWriteResets() throws {
        try Self.outsideWriterResets("engine without tracker") { image in
            let f = try VHDXFile.openFile(path: image, writable: true)
            #expect(f.observer == nil)
            try f.write([UInt8](repeating: 0x5b, count: 4096), at: 6 * Self.MiB)
            try f.close()
        }
    }

    // MARK: - 4. SIGKILL during writes

    @Test("writers killed with SIGKILL: every byte that differs from the sealed content lies in the answer")
    func killedWritersStayCovered() throws {
        let size = 32 * Self.MiB
        let image = try Self.create(size, name: "kill.vhdx", options: "--granule 4K")
        defer { unlink(image) }
        let vhdx = try vhdxBinary()
        let initial = Self.randomBytes(seed: 42, count: Int(size))
        let f = try Self.writeFile(initial)
        defer { unlink(f) }
        try Self.vhdx("write '\(image)' --offset 0 --input '\(f)'")
        try Self.vhdx("write '\(image)' --offset \(20 * Self.MiB) --trim --length \(2 * Self.MiB)")
        let id = try Self.seal(image)
        let baseRaw = Fixtures.tempPath("base.raw")
        defer { unlink(baseRaw) }
        try QemuRaw.convert(image, to: baseRaw)  // the oracle's read: `vhdx` reads are not what is checked against
        let base = try Self.readFile(baseRaw)

        let chunk = try Self.writeFile(Self.randomBytes(seed: 7, count: Int(24 * Self.MiB)))
        defer { unlink(chunk) }
        var rng = SplitMix(seed: UInt64(UInt32.random(in: 0...UInt32.max)))
        let seed = rng.state
        var dirtyRounds = 0, lastDiffering: UInt64 = 0
        let rounds = 6
        for round in 0..<rounds {
            let killMs = 250 + Int(rng.next() % 1100)
            let writer: String
            if round % 2 == 0 {
                // Many short writers, one after another, at random places.
                writer = """
                    RANDOM=\(rng.next() % 32768)
                    while true; do
                      len=$(( (RANDOM % 2048 + 1) * 1024 ))
                      off=$(( ((RANDOM << 15) | RANDOM) % (\(size) - len) ))
                      '\(vhdx)' write '\(image)' --offset $off --pattern $(( RANDOM % 255 + 1 )) --length $len || exit 1
                    done
                    """
            } else {
                // Long writers, one after another: 24 MiB of random data each, so most of the
                // time is spent inside a tracked session (a pipe would be staged whole before
                // the session opens, and the kill would land before it).
                writer = """
                    RANDOM=\(rng.next() % 32768)
                    while true; do
                      off=$(( ((RANDOM << 15) | RANDOM) % (\(size - 24 * Self.MiB) / 4096) * 4096 ))
                      '\(vhdx)' write '\(image)' --offset $off --input '\(chunk)' || true  # "in use" while the test looks
                    done
                    """
            }
            // The long writers' rounds kill inside a session: 15 ms after a writer is seen to
            // hold the image. A kill at a blind time lands between sessions about half the time,
            // and the test must not depend on luck to show that an interrupted session is
            // covered. "Holds" is seen without taking a lock (which would refuse the writer): an
            // F_OFD_GETLK for qemu's write-permission byte (101), which every writable open of
            // ours holds (QemuLocks), polled every 1 ms for up to 3 s by one process, which then
            // kills the writers' process group itself (a session lasts tens of ms). (It was
            // `vhdx track status` in a loop: up to 400 processes a round, most of the test's 130
            // CPU-seconds, and its kill came too late for most sessions.)
            let killInSession = """
                python3 - '\(image)' "$pid" <<'PY'
                import fcntl, os, signal, struct, sys, time
                fd = os.open(sys.argv[1], os.O_RDONLY)
                end = time.time() + 3
                while time.time() < end:
                    probe = struct.pack('hhqqixxxx', fcntl.F_WRLCK, os.SEEK_SET, 101, 1, 0)
                    if struct.unpack('hhqqixxxx', fcntl.fcntl(fd, 36, probe))[0] != fcntl.F_UNLCK:  # 36: F_OFD_GETLK
                        time.sleep(0.015)
                        print("in a session")
                        break
                    time.sleep(0.001)
                os.killpg(int(sys.argv[2]), signal.SIGKILL)
                PY
                """
            let script = """
                set -m
                ( \(writer)
                ) </dev/null >/dev/null 2>&1 &
                pid=$!
                sleep \(Double(killMs) / 1000)
                \(round % 2 == 1 ? killInSession : "")
                kill -9 -- -$pid 2>/dev/null && echo killed || echo finished
                wait $pid 2>/dev/null
                true
                """
            let r = try Shell.run(script)
            let label = "round \(round) (seed \(seed), \(round % 2 == 0 ? "short writers" : "24 MiB writers"), kill after \(killMs) ms, \(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))"

            let st = try Self.status(image)
            let notes = (st["notes"] as? [String]) ?? []
            if notes.contains(where: { $0.contains("did not close cleanly") }) { dirtyRounds += 1 }
            // Half the rounds: a writable open and close through the engine and its tracker
            // first (the fold is persisted); the others just ask.
            if round % 3 != 2 {
                let img = try VHDXFile.openFile(path: image, writable: true)
                try ChangeTracker.attach(to: img)
                try img.close()
            }
            let c = try Self.changes(image, since: id)
            #expect(c.status == 0, "\(label): track changes exit \(c.status): \(c.stderr)")
            guard c.status == 0 else { continue }
            let nowRaw = Fixtures.tempPath("now.raw")
            defer { unlink(nowRaw) }
            try QemuRaw.convert(image, to: nowRaw)
            let now = try Self.readFile(nowRaw)
            let (missed, differing) = Self.uncovered(base, now, ranges: c.ranges)
            #expect(missed.isEmpty, "\(label): bytes changed since the seal lie outside the answer, first at \(missed) (\(differing) differing bytes, \(c.ranges.count) ranges)")
            lastDiffering = differing
        }
        // The test means something only if writes landed and some kill left an unclean image.
        #expect(lastDiffering > 0, "no write landed (seed \(seed))")
        #expect(dirtyRounds >= 1, "no kill interrupted a tracked session (seed \(seed))")
    }

    // MARK: - 5. Each unanswerable question has its own reason

    struct ErrorCase { let name: String; let image: String; let id: String; let expect: [String] }

    // Text that is not a change ID at all is a usage error (64), not exit 4: TrackingCLITests.
    @Test("exit 4 with its own message: not enabled, unknown (foreign tracking id, never sealed), another disk, expired, reset")
    func distinctErrors() throws {
        let a = try Self.create(4 * Self.MiB, name: "a.vhdx", options: "--history 2")
        let b = try Self.create(4 * Self.MiB, name: "b.vhdx")
        let plain = try Self.create(4 * Self.MiB, name: "plain.vhdx", track: false)
        defer { unlink(a); unlink(b); unlink(plain) }

        var ids: [String] = []
        for i in 0..<5 {
            try Self.vhdx("write '\(a)' --offset \(UInt64(i) * Self.MiB / 2) --pattern \(i + 1) --length 4096")
            ids.append(try Self.seal(a))
        }
        #expect(Set(ids).count == 5)
        let newest = ids[4]
        #expect(try Self.changes(a, since: newest).status == 0)

        let idA = ChangeID(text: newest)!
        var foreignTracking = idA
        foreignTracking.trackingID = GUID.random()
        var neverSealed = idA
        neverSealed.epoch += 7

        let cases = [
            ErrorCase(name: "not enabled", image: plain, id: newest, expect: ["tracking not enabled"]),
            ErrorCase(name: "unknown tracking id", image: a, id: foreignTracking.description, expect: ["unknown change ID", "not sealed by this disk's tracking"]),
            ErrorCase(name: "never sealed", image: a, id: neverSealed.description, expect: ["unknown change ID", "never sealed"]),
            ErrorCase(name: "another disk", image: b, id: newest, expect: ["change ID of another disk"]),
            ErrorCase(name: "expired", image: a, id: ids[0], expect: ["change ID expired", "older than the history"]),
        ]
        var messages: [String: String] = [:]
        for c in cases {
            let r = try Self.changes(c.image, since: c.id)
            #expect(r.status == 4, "\(c.name): exit \(r.status), not 4 (\(r.stderr))")
            for e in c.expect { #expect(r.stderr.contains(e), "\(c.name): stderr lacks \(e.debugDescription): \(r.stderr)") }
            messages[c.name] = r.stderr
        }

        // History 2: the IDs before the two newest records expire, the rest still answer.
        let retained = (try Self.status(a)["retained-ids"] as? [String]) ?? []
        #expect(retained.last == newest && !retained.contains(ids[0]) && retained.count <= 3, "retained: \(retained)")
        for id in ids {
            let r = try Self.changes(a, since: id)
            if retained.contains(id) {
                #expect(r.status == 0, "retained \(id): exit \(r.status) \(r.stderr)")
            } else {
                #expect(r.status == 4 && r.stderr.contains("change ID expired"), "\(id): exit \(r.status) \(r.stderr)")
            }
        }

        // Reset: a write by the engine without a tracker.
        do {
            let f = try VHDXFile.openFile(path: a, writable: true)
            try f.write([UInt8](repeating: 0xee, count: 512), at: 0)
            try f.close()
        }
        let r = try Self.changes(a, since: newest)
        #expect(r.status == 4 && r.stderr.contains("tracking reset"), "reset: exit \(r.status) \(r.stderr)")
        messages["reset"] = r.stderr

        // Each reason names itself, and no other case's reason.
        let reasons = ["tracking not enabled", "unknown change ID", "change ID expired", "change ID of another disk", "tracking reset"]
        for (name, text) in messages {
            let named = reasons.filter { text.contains($0) }
            #expect(named.count == 1, "\(name): \(named) in \(text)")
        }
        #expect(Set(messages.values).count == messages.count, "two cases share a message: \(messages)")
    }
}
