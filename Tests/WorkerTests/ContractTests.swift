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

    /// `inputMetadata` is written by hand-made `encode(to:)` methods (so absent values are written
    /// as null): every stored property must reach the JSON, so one added later cannot drop out.
    @Test func everyProbeFieldReachesInputMetadata() throws {
        let json = try #require(
            try JSONSerialization.jsonObject(with: JSONFormat.encoder().encode(Self.info)) as? [String: Any])
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
}
