import Foundation
import Media
import TestSupport
import Testing

/// `video_hevc` and `video_av1`: the main video again in a more efficient codec, for clients that
/// play it. Free when the upload already is one (a copy), an AV1 encode in the same decode when
/// asked for, and never kept when it is not smaller than `video`.
@Suite("Efficient variants", .oneAtATime)
struct EfficientVariantTests {
    /// What an iPhone records (HEVC in MOV, held upright, with a location): the H.264 `video` is
    /// encoded, and `video_hevc` is the upload's own HEVC, copied (no encode), tagged `hvc1` for
    /// Apple's players, upright, without the location, smaller than the H.264.
    @Test func hevcUploadIsCopiedAsAnHvc1Variant() throws {
        let source = Fixtures.path("portrait_hevc_rot90.mov")
        try withProcessed("portrait_hevc_rot90.mov", type: .compression) { report, directory in
            let variant = try #require(report.outputs[.videoHevc])
            let video = try #require(report.outputs[.video])
            #expect(variant.encoder?.path == "remux" && variant.videoCodec == "hevc", "\(variant)")
            #expect(variant.path == "video_hevc.mp4" && variant.width == 360 && variant.height == 640)
            #expect(video.encoder?.path == "transcode" && variant.bytes < video.bytes)
            let path = directory.appendingPathComponent(variant.path).path
            let streams = try #require(try FFprobe.describe(path)?["streams"] as? [[String: Any]])
            let hevc = try #require(streams.first { $0["codec_type"] as? String == "video" })
            #expect(hevc["codec_tag_string"] as? String == "hvc1")
            #expect(try FFprobe.videoPacketCount(path) == (try FFprobe.videoPacketCount(source)))
            expectUpright(try Snapshot.firstFrame(of: path), "HEVC variant")
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            #expect(bytes.range(of: Data("+48.8584".utf8)) == nil, "the upload's location rode along")
        }
    }

    /// Asked for always: 1080p H.264 gets a 720p AV1 beside its 720p H.264, from the same decode,
    /// upright, as long, and smaller.
    @Test func av1IsEncodedWhenAskedFor() throws {
        let directory = try Fixtures.temporaryDirectory("av1")
        defer { try? FileManager.default.removeItem(at: directory) }
        var request = MediaProcessor.Request(
            inputPath: Fixtures.path("landscape_1080p_h264_aac.mp4"), outputDirectory: directory.path,
            type: .compression)
        request.efficientVariant = .always
        let report = try MediaProcessor.run(request, logger: .init(label: "test"))
        let variant = try #require(report.outputs[.videoAv1])
        let video = try #require(report.outputs[.video])
        #expect(variant.videoCodec == "av1" && variant.audioCodec == "aac" && variant.encoder?.codec == "av1")
        #expect(variant.width == 1280 && variant.height == 720 && variant.bytes < video.bytes)
        #expect(abs((variant.durationMs ?? 0) - (video.durationMs ?? 0)) <= 34)
        let path = directory.appendingPathComponent(variant.path).path
        expectUpright(try Snapshot.firstFrame(of: path), "AV1 variant")
        #expect(try Probe.inspect(path: path).video.codec == "av1")
    }

    /// H.264 uploads have no free variant, and `off` makes none even of an HEVC upload.
    @Test func noVariantUnlessFreeOrAsked() throws {
        try withProcessed("portrait_rot90.mp4", type: .fullProcessing) { report, _ in
            #expect(!report.outputs.keys.contains { $0.isEfficientVariant })
        }
        let directory = try Fixtures.temporaryDirectory("off")
        defer { try? FileManager.default.removeItem(at: directory) }
        var request = MediaProcessor.Request(
            inputPath: Fixtures.path("portrait_hevc_rot90.mov"), outputDirectory: directory.path, type: .compression)
        request.efficientVariant = .off
        let report = try MediaProcessor.run(request, logger: .init(label: "test"))
        #expect(Set(report.outputs.keys) == [.video])
    }

    /// An optional variant never costs the job: a picture SVT-AV1 cannot take (84x32 here) is not
    /// tried, and the report says why; the job's own video is made as without it.
    @Test func aVariantThatCannotBeMadeIsLeftOutWithWhy() throws {
        let directory = try Fixtures.temporaryDirectory("tiny-av1")
        defer { try? FileManager.default.removeItem(at: directory) }
        var request = MediaProcessor.Request(
            inputPath: Fixtures.path("tiny_84x33.webm"), outputDirectory: directory.path, type: .compression)
        request.efficientVariant = .always
        let report = try MediaProcessor.run(request, logger: .init(label: "test"))
        let video = try #require(report.outputs[.video])
        #expect(report.outputs[.videoAv1] == nil && video.width == 84)
        #expect(
            video.encoder?.why.contains {
                $0.hasPrefix("video_av1 left out: SVT-AV1 takes pictures of 64 to 16384 pixels a side")
            } == true, "\(video.encoder?.why ?? [])")
    }
}
