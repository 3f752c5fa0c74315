import Foundation
import Testing
import VHDXTestSupport

/// What `info`, `check` and `track …` say about tracking, through the CLI: exit codes of bad
/// arguments and the wording of the history limit.
@Suite("Tracking in info and check", .serialized)
struct TrackingCLITests {
    func vhdx(_ args: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Shell.run("'\(try vhdxBinary())' \(args)", allowFailure: true)
    }

    @Test("info shows the tracking state; check reports a damaged tracking region as corruption until the next seal")
    func infoAndCheck() throws {
        let dir = Fixtures.tempPath("trackcli")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let image = "\(dir)/t.vhdx"
        #expect(try vhdx("create '\(image)' 64M").status == 0)
        let untracked = try JSONSerialization.jsonObject(with: Data(try vhdx("info --json '\(image)'").stdout.utf8)) as? [String: Any]
        #expect((untracked?["change-tracking"] as? [String: Any])?["enabled"] as? Bool == false)
        #expect(try vhdx("track enable '\(image)' --granule 4K --history 3").status == 0)
        let id = try vhdx("track seal '\(image)'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let info = try #require(try JSONSerialization.jsonObject(with: Data(try vhdx("info --json '\(image)'").stdout.utf8)) as? [String: Any])
        let t = try #require(info["change-tracking"] as? [String: Any])
        #expect(t["enabled"] as? Bool == true)
        #expect((t["granule"] as? NSNumber)?.intValue == 4096)
        #expect((t["history"] as? NSNumber)?.intValue == 3)
        #expect(t["latest-id"] as? String == id)
        #expect(try vhdx("info '\(image)'").stdout.contains("latest change ID: \(id)"))
        #expect(try vhdx("check '\(image)'").status == 0)

        // Damage the region's header page (not its copy in the log).
        let data = try Data(contentsOf: URL(fileURLWithPath: image))
        var bytes = Array(data)
        let signature = Array("VXTRACK1".utf8)
        let at = try #require(stride(from: 2 << 20, to: bytes.count - 4096, by: 4096).first { Array(bytes[$0..<$0 + 8]) == signature })
        bytes[at + 300] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: image))
        let c = try vhdx("check '\(image)'")
        #expect(c.status == 2 && c.stdout.contains("change tracking") && c.stdout.contains("damaged"), "\(c.stdout)")
        #expect(try vhdx("track changes '\(image)' --since \(id)").status == 4)
        // The next seal records the reset; the region checks clean again.
        #expect(try vhdx("track seal '\(image)'").status == 0)
        #expect(try vhdx("check '\(image)'").status == 0)
    }

    func freshImage(_ name: String, size: String = "16M") throws -> (dir: String, image: String) {
        let dir = Fixtures.tempPath(name)
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let image = "\(dir)/t.vhdx"
        #expect(try vhdx("create '\(image)' \(size)").status == 0)
        return (dir, image)
    }

    @Test("--granule and --history out of range are usage errors (64), and nothing is written", arguments: [
        "--history 0", "--history 65", "--granule 3K", "--granule 256", "--granule 64M",
    ])
    func badGranuleOrHistoryIsUsage(_ option: String) throws {
        let (dir, image) = try freshImage("trackbadopt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let before = try Shell.sha256(file: image)
        let r = try vhdx("track enable '\(image)' \(option)")
        #expect(r.status == 64, "\(option): exit \(r.status) \(r.stderr)")
        #expect(r.stderr.contains(option.split(separator: " ")[0].dropFirst(2)), "\(option): \(r.stderr)")
        #expect(try Shell.sha256(file: image) == before)
    }

    @Test("track enable on a tracked disk succeeds (\"already enabled\") and writes nothing; other settings asked for are a usage error (64)")
    func enableIsIdempotent() throws {
        let (dir, image) = try freshImage("trackenable2")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try vhdx("track enable '\(image)' --granule 8K --history 4").status == 0)
        let id = try vhdx("track seal '\(image)'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let before = try Shell.sha256(file: image)
        for same in ["", "--granule 8K", "--history 4", "--granule 8K --history 4"] {
            let r = try vhdx("track enable '\(image)' \(same)")
            #expect(r.status == 0 && r.stderr.contains("already enabled") && r.stderr.contains("8 KiB"), "\(same): exit \(r.status) \(r.stderr)")
            #expect(try Shell.sha256(file: image) == before, "\(same): the file changed")
        }
        for other in ["--granule 16K", "--history 5", "--granule 8K --history 3"] {
            let r = try vhdx("track enable '\(image)' \(other)")
            #expect(r.status == 64 && r.stderr.contains("already enabled with other settings") && r.stderr.contains("track disable"), "\(other): exit \(r.status) \(r.stderr)")
            #expect(try Shell.sha256(file: image) == before, "\(other): the file changed")
        }
        // The ID sealed before still answers: nothing was reset.
        #expect(try vhdx("track changes '\(image)' --since \(id)").status == 0)
    }

    @Test("text that is not a change ID is a usage error (64) in track changes and export --since, never exit 4", arguments: [
        ("", "empty"), (" ", "whitespace"), ("%ID%\n", "newline"), ("%ID% ", "whitespace"), ("%UPPER%", "upper-case"),
        ("%ID%:1:2", "fields"), ("vhdxct1:abc", "fields"), ("%NOPREFIX%", "vhdxct1:"),
    ])
    func malformedChangeIDsAreUsageErrors(_ c: (String, String)) throws {
        let (dir, image) = try freshImage("trackbadid")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try vhdx("track enable '\(image)'").status == 0)
        let id = try vhdx("track seal '\(image)'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let text = c.0.replacingOccurrences(of: "%ID%", with: id).replacingOccurrences(of: "%UPPER%", with: id.uppercased().replacingOccurrences(of: "VHDXCT1:", with: "vhdxct1:"))
            .replacingOccurrences(of: "%NOPREFIX%", with: String(id.dropFirst("vhdxct1:".count)))
        // Passed through a file and a shell variable so the exact bytes (a trailing newline) reach the argument.
        try Data(text.utf8).write(to: URL(fileURLWithPath: "\(dir)/id"))
        let setID = "ID=\"$(cat '\(dir)/id'; printf x)\"; ID=\"${ID%x}\"; "
        for command in ["track changes '\(image)' --since \"$ID\"", "track changes '\(image)' --since \(id) --until \"$ID\"",
                        "export '\(image)' '\(dir)/inc.vxs' --since \"$ID\""] {
            let r = try Shell.run(setID + "'\(try vhdxBinary())' " + command, allowFailure: true)
            #expect(r.status == 64, "\(c.1): \(command): exit \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("not a change ID") && r.stderr.contains(c.1), "\(c.1): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/inc.vxs"))
        // Nothing was sealed by the refused export: the latest ID is still the one above.
        let status = try #require(try JSONSerialization.jsonObject(with: Data(try vhdx("track status --json '\(image)'").stdout.utf8)) as? [String: Any])
        #expect(status["latest-id"] as? String == id)
        // A well-formed ID tracking cannot answer is still exit 4.
        var unknown = Array(id)
        unknown[unknown.count - 1] = unknown.last == "9" ? "8" : "9"
        #expect(try vhdx("track changes '\(image)' --since \(String(unknown))").status == 4)
    }

    @Test("history N keeps N epochs: status says so, and N + 1 IDs answer")
    func historyCountsEpochs() throws {
        let (dir, image) = try freshImage("trackhistory")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try vhdx("track enable '\(image)' --history 2").status == 0)
        var ids: [String] = []
        for i in 0..<5 {
            #expect(try vhdx("write '\(image)' --offset \(i)M --pattern \(i + 1) --length 4K").status == 0)
            ids.append(try vhdx("track seal '\(image)'").stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let answering = ids.filter { (try? vhdx("track changes '\(image)' --since \($0)").status) == 0 }
        #expect(answering == Array(ids.suffix(3)))
        let text = try vhdx("track status '\(image)'").stdout
        #expect(text.contains("history: 2 epochs (up to 3 IDs answer)"), "\(text)")
        #expect(text.contains("retained change IDs: 3"), "\(text)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(try vhdx("track status --json '\(image)'").stdout.utf8)) as? [String: Any])
        #expect((j["history"] as? NSNumber)?.intValue == 2)
        #expect((j["max-retained-ids"] as? NSNumber)?.intValue == 3)
        #expect((j["retained-ids"] as? [String])?.count == 3)
        let help = try vhdx("track enable --help").stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(help.contains("N epochs keep the last N + 1 change IDs answerable"), "\(help)")
    }
}
