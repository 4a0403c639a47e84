import Foundation
import TestSupport
import Testing

/// Runs the built `media-worker` with `arguments`.
func mediaWorker(_ arguments: String...) throws -> ProgramResult {
    try runProgram(Fixtures.executable, arguments)
}

@Suite("media-worker probe and process", .oneAtATime)
struct ProcessCommandTests {
    @Test func processPrintsOneJSONObject() throws {
        let directory = try Fixtures.temporaryDirectory("cli")
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try mediaWorker(
            "process", Fixtures.path("portrait_rot90.mp4"), "--out", directory.path, "--type", "THUMBNAIL", "--json")
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        #expect(Set(object.keys) == ["type", "profile", "input", "outputs", "elapsedMs"])
        #expect(object["type"] as? String == "THUMBNAIL")
        #expect(object["profile"] as? String == "MEDIUM")
        let input = try #require(object["input"] as? [String: Any])
        let video = try #require(input["video"] as? [String: Any])
        #expect(video["rotation"] as? Int == 90)
        #expect(video["width"] as? Int == 360 && video["height"] as? Int == 640)
        let outputs = try #require(object["outputs"] as? [String: [String: Any]])
        #expect(Set(outputs.keys) == ["poster", "thumbnail"])
        let poster = try #require(outputs["poster"])
        #expect(poster["path"] as? String == "poster.jpg")
        #expect(poster["width"] as? Int == 360 && poster["height"] as? Int == 640)
        #expect(poster["mimeType"] as? String == "image/jpeg")
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("poster.jpg").path))
        #expect(outputs.values.allSatisfy { ($0["blurhash"] as? String)?.count == 28 && $0["timeMs"] is Int })
        #expect(outputs.allSatisfy { $0.value["role"] as? String == $0.key })
    }

    @Test(arguments: [
        ("empty.mp4", "corrupt_input"), ("not_a_video.mp4", "unsupported"), ("truncated.mp4", "corrupt_input"),
        ("huge_dimensions.mp4", "limits_exceeded"),
    ])
    func failureIsACodeOnStderrAndJSONOnStdout(file: String, code: String) throws {
        let directory = try Fixtures.temporaryDirectory("cli")
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try mediaWorker("process", Fixtures.path(file), "--out", directory.path, "--json")
        #expect(result.status != 0)
        #expect(result.stderr.hasPrefix("\(code): "), "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: [String: String]])
        #expect(object["error"]?["code"] == code)
        #expect(object["error"]?["message"]?.isEmpty == false)
    }

    @Test func limitFlagsApply() throws {
        let result = try mediaWorker("probe", Fixtures.path("landscape_1080p_h264_aac.mp4"), "--max-pixels", "921600")
        #expect(result.status != 0)
        #expect(result.stderr.hasPrefix("limits_exceeded: "))
        let allowed = try mediaWorker(
            "probe", Fixtures.path("huge_dimensions.mp4"), "--max-pixels", "70000000", "--json")
        #expect(allowed.status == 0, "\(allowed.stderr)")
    }

    @Test func probeSummaryIsReadable() throws {
        let result = try mediaWorker("probe", Fixtures.path("portrait_rot90.mp4"))
        #expect(result.status == 0)
        let text = String(decoding: result.stdout, as: UTF8.self)
        #expect(text.contains("360x640 (stored 640x360, rotated 90°)"))
        #expect(text.contains("location    +35.6586+139.7454/"))
    }

    /// A file name is the uploader's: escape sequences in it (retitle the terminal, clear it, turn
    /// the text around) are printed as text, never sent to the terminal, in a summary and in an error.
    @Test func fileNamesCannotDriveTheTerminal() throws {
        let folder = try Fixtures.temporaryDirectory("names")
        let name = "clip\u{1B}]0;pwned\u{07}\u{1B}[2J\u{202E}4pm.mp4"
        let good = folder.appendingPathComponent(name)
        try FileManager.default.copyItem(atPath: Fixtures.path("no_audio.mp4"), toPath: good.path)
        let bad = folder.appendingPathComponent("bad" + name)
        try FileManager.default.copyItem(atPath: Fixtures.path("not_a_video.mp4"), toPath: bad.path)
        let out = folder.appendingPathComponent("out").path
        for arguments in [["probe", good.path], ["process", bad.path, good.path, "--type", "METADATA", "--out", out]] {
            let result = try runProgram(Fixtures.executable, arguments)
            let output = String(decoding: result.stdout, as: UTF8.self) + result.stderr
            #expect(
                !output.contains("\u{1B}") && !output.contains("\u{07}") && !output.contains("\u{202E}"), "\(output)")
            #expect(output.contains(#"clip\u{1B}]0;pwned\u{7}\u{1B}[2J\u{202E}4pm.mp4"#), "\(output)")
        }
    }
}
