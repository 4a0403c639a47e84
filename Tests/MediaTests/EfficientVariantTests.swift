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

    /// A variant is kept only when its picture is as good as `video`'s (SSIM within 0.005 against
    /// the same source frames): background work on a popular video compares with the `video` made
    /// then. Against a finer `video` (ULTRA's CRF 20 at the same size) the MEDIUM AV1 is left out
    /// with both scores; against a coarser one (LOW's CRF 28) it is kept and says so.
    @Test func aVariantIsKeptOnlyWhenItsPictureIsAsGood() throws {
        let directory = try Fixtures.temporaryDirectory("av1-ssim")
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = Fixtures.path("h263_qcif.3gp")
        func video(_ profile: QualityProfile) throws -> String {
            let folder = directory.appendingPathComponent(profile.rawValue).path
            let report = try MediaProcessor.run(
                .init(
                    inputPath: input, outputDirectory: folder, type: .compression, profile: profile, allowRemux: false),
                logger: .init(label: "test"))
            return folder + "/" + (try #require(report.outputs[.video])).path
        }
        func variant(comparedWith main: String) throws -> ProcessingReport {
            var request = MediaProcessor.Request(
                inputPath: input, outputDirectory: directory.appendingPathComponent(UUID().uuidString).path,
                type: .compression)
            request.part = .efficientVariant
            request.variantSmallerThan = .max
            request.variantComparedWith = main
            return try MediaProcessor.run(request, logger: .init(label: "test"))
        }
        let (finer, coarser) = (try video(.ultra), try video(.low))

        let refused = try variant(comparedWith: finer)
        #expect(refused.outputs[.videoAv1] == nil)
        let why = try #require(refused.variantLeftOut)
        #expect(why.hasPrefix("its picture came out worse: SSIM 0.9"), "\(why)")

        let kept = try #require(try variant(comparedWith: coarser).outputs[.videoAv1])
        let comparison = try #require(kept.encoder?.why.first { $0.hasPrefix("SSIM ") })
        let scores = comparison.split(separator: " ").compactMap { Double($0) }
        #expect(scores.count == 2 && scores[0] >= scores[1] - 0.005 && scores[0] > 0.9, "\(comparison)")
    }
}
