import Foundation
import TestSupport
import Testing

@testable import JobChild
@testable import Media
@testable import Worker

@Suite("The daemon's contracts: child messages, the request, the output columns", .heavy)
struct ContractTests {
    static let info = try! Probe.inspect(path: Fixtures.path("portrait_rot90.mp4"))

    /// Every message survives the line it travels as, whatever its case.
    @Test func childMessagesRoundTrip() throws {
        let report = ProcessingReport(
            type: .thumbnail, profile: .medium, input: Self.info, outputs: [:], elapsedMs: 5, damage: nil)
        for message in [
            ChildMessage.sandbox(SandboxReport()), .probe(Self.info), .progress(0.25), .report(report),
            .failure(JobFailure(.corruptInput, "damaged")),
        ] {
            let line = try JSONFormat.encoder().encode(message)
            #expect(!line.contains(UInt8(ascii: "\n")))
            #expect(try JSONDecoder().decode(ChildMessage.self, from: line) == message)
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ChildMessage.self, from: Data(#"{"kind": "teleport"}"#.utf8))
        }
    }

    @Test func requestRoundTrips() throws {
        var media = MediaProcessor.Request(
            inputPath: "/tmp/job/input", outputDirectory: "/tmp/job/out", type: .fullProcessing, profile: .high,
            threads: 2)
        media.pieceWork = .split(seconds: 30, after: 120)
        media.variantComparedWith = "/tmp/job/video.mp4"
        let request = JobRequest(media: media, parentPID: 7, memoryBytes: 1 << 30, cpuSeconds: 60)
        #expect(try JSONDecoder().decode(JobRequest.self, from: JSONFormat.encoder().encode(request)) == request)
        #expect(request.jobFolder == "/tmp/job")
    }

    /// `inputMetadata` names every stored property, an absent one as null (synthesized encoding
    /// would leave it out), so one added later cannot drop out.
    @Test func everyProbeFieldReachesInputMetadata() throws {
        var info = Self.info
        info.location = nil
        info.audio?.bitRate = nil
        let json = try #require(
            try JSONSerialization.jsonObject(with: JSONFormat.encoder().encode(info)) as? [String: Any])
        #expect(json["location"] is NSNull && (json["audio"] as? [String: Any])?["bitRate"] is NSNull)
        func expectAllFields(of value: Any, in object: [String: Any], _ name: String) {
            for case let (label?, _) in Mirror(reflecting: value).children {
                #expect(object.keys.contains(label), "\(name).\(label) is missing from the JSON")
            }
        }
        expectAllFields(of: Self.info, in: json, "MediaInfo")
        expectAllFields(of: Self.info.video, in: try #require(json["video"] as? [String: Any]), "VideoInfo")
        let audio = try #require(Self.info.audio)
        expectAllFields(of: audio, in: try #require(json["audio"] as? [String: Any]), "AudioInfo")
    }

    /// The three column shapes are views of one stored output.
    @Test func storedOutputEncodings() throws {
        let file = try JSONDecoder().decode(
            OutputFile.self,
            from: Data(
                #"{"role": "poster", "path": "poster.jpg", "width": 360, "height": 640, "bytes": 100, "mimeType": "image/jpeg", "timeMs": 333, "blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj"}"#
                    .utf8))
        let stored = StoredOutput(
            file: file, key: "media-worker/jobs/1/20261207014210123456/poster.jpg", url: "https://cdn/x",
            sha256: String(repeating: "ab", count: 32), damage: nil)
        func keys(_ value: some Encodable) throws -> Set<String> {
            Set((try JSONSerialization.jsonObject(with: JSONFormat.encoder().encode(value)) as? [String: Any])!.keys)
        }
        #expect(
            try keys(stored.metadata)
                == ["key", "url", "width", "height", "bytes", "sha256", "mimeType", "timeMs", "blurhash"])
        #expect(try keys(stored.thumbnail) == ["key", "url", "width", "height", "timeMs", "mimeType", "blurhash"])
        #expect(try keys(stored.variant) == ["key", "url", "width", "height", "bytes", "mimeType", "sha256"])
        #expect(OutputKeys.output(jobId: 1, token: "2026-12-07 01:42:10.123456", role: .poster) == stored.key)
        #expect(OutputKeys.owner(of: stored.key)! == (1, "20261207014210123456"))
        #expect(OutputKeys.owner(of: "media-worker/jobs/1/poster.jpg")! == (1, nil))
        #expect(OutputKeys.owner(of: "media-worker/checks/a.txt") == nil)
    }

    /// `file_upload.metadata.video` is the probe's summary for a chat bubble.
    @Test func videoSummaryForTheApp() throws {
        let json = try #require(
            try JSONSerialization.jsonObject(
                with: JSONFormat.encoder().encode(VideoSummary(info: Self.info, blurhash: "LEHV6nWB2yk8"))
            ) as? [String: Any])
        #expect(
            Set(json.keys) == [
                "durationMs", "width", "height", "rotation", "codec", "hdr", "hasAudio", "frameRate", "blurhash",
            ])
        #expect(json["width"] as? Int == 360 && json["height"] as? Int == 640 && json["rotation"] as? Int == 90)
        #expect(json["hasAudio"] as? Bool == true && json["codec"] as? String == "h264")
    }

    /// What `outputMetadata` holds reads back as the outputs that were written, the role from its key.
    @Test func storedOutputsReadBack() throws {
        let video = StoredOutput(
            file: OutputFile(
                video: .video, info: Self.info,
                encoder: EncoderReport(
                    path: "remux", audioPath: "copy", why: ["fits"], codec: "h264", preset: nil, crf: nil,
                    maxrateKbps: nil, bufsizeKbps: nil, audioKbps: nil, width: 360, height: 640, fps: 30, loudness: nil)
            ),
            key: "k/video.mp4", url: "https://cdn/v",
            sha256: String(repeating: "cd", count: 32),
            damage: DamageReport(videoPacketsSkipped: 3, audioPacketsSkipped: 1),
            reusedFrom: 7)
        let poster = StoredOutput(
            file: OutputFile(
                still: .poster, width: 360, height: 640, bytes: 100, timeMs: 333, blurhash: "LEHV6nWB2yk8"),
            key: "k/poster.jpg", url: "https://cdn/p", sha256: nil, damage: nil)
        let json = try JSONFormat.encoder().encode(["video": video.metadata, "poster": poster.metadata])
        let read = try JSONDecoder().decode([String: StoredOutput].self, from: json)
        #expect(read == ["video": video, "poster": poster])
        #expect(read["video"]?.file.role == .video && read["poster"]?.file.path == "poster.jpg")
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(
                [String: StoredOutput].self, from: JSONFormat.encoder().encode(["clip": poster.metadata]))
        }
    }
}
