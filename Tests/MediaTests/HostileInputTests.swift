import Foundation
import Media
import TestSupport
import Testing

/// A crafted upload that tries to make FFmpeg read another file: `secret` (another user's video,
/// which predictable output keys make easy to name) lies beside it.
struct CraftedUpload: Sendable, CustomTestStringConvertible {
    var name: String
    var upload: String
    var secret: String = "secret.mp4"
    /// The upload's bytes, given the secret's absolute path.
    var content: @Sendable (String) throws -> Data
    /// ffprobe's arguments for the positive control (FFmpeg's own defaults do open the secret).
    var ffprobeOptions: [String] = []
    /// What media-worker says of it.
    var code = "unsupported"

    var testDescription: String { name }

    static func text(_ make: @escaping @Sendable (String) -> String) -> @Sendable (String) throws -> Data {
        { Data(make($0).utf8) }
    }

    /// A 1×1 PNG.
    static let png = Data(
        [
            0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
            0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53, 0xDE, 0x00, 0x00, 0x00,
            0x0C, 0x49, 0x44, 0x41, 0x54, 0x08, 0xD7, 0x63, 0xF8, 0xCF, 0xC0, 0x00, 0x00, 0x03, 0x01, 0x01, 0x00, 0x18,
            0xDD, 0x8D, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
        ] as [UInt8])

    static let all: [CraftedUpload] = [
        CraftedUpload(
            name: "HLS playlist", upload: "clip.mp4",
            content: text { "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n\($0)\n#EXT-X-ENDLIST\n" }),
        CraftedUpload(
            name: "DASH manifest", upload: "clip.mp4",
            content: text {
                """
                <?xml version="1.0" encoding="utf-8"?>
                <MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT2S"
                     minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
                  <Period><AdaptationSet mimeType="video/mp4">
                    <Representation id="1" bandwidth="300000" width="640" height="360">
                      <BaseURL>file://\($0)</BaseURL><SegmentBase/>
                    </Representation>
                  </AdaptationSet></Period>
                </MPD>
                """
            }),
        CraftedUpload(
            name: "FFconcat script", upload: "clip.mp4",
            content: text { "ffconcat version 1.0\nfile \(URL(fileURLWithPath: $0).lastPathComponent)\n" }),
        CraftedUpload(
            name: "image2 sequence pattern", upload: "frame%03d.png", secret: "frame001.png",
            content: { _ in png }),
        CraftedUpload(
            name: "MOV data reference", upload: "clip.mov",
            content: { _ in try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("external_reference.mov"))) },
            ffprobeOptions: ["-enable_drefs", "1"], code: "corrupt_input"),
    ]
}

@Suite("Hostile uploads: nothing but the upload is opened, and work is bounded", .oneAtATime)
struct HostileInputTests {
    @Test(arguments: CraftedUpload.all)
    func craftedUploadOpensNothingElse(_ crafted: CraftedUpload) throws {
        let folder = try Fixtures.temporaryDirectory("hostile")
        let secret = folder.appendingPathComponent(crafted.secret)
        try FileManager.default.copyItem(atPath: Fixtures.path("no_audio.mp4"), toPath: secret.path)
        let upload = folder.appendingPathComponent(crafted.upload)
        try crafted.content(secret.path).write(to: upload)

        // Positive control: the crafted file does reach the secret when FFmpeg opens it its own way.
        if let ffprobe = FFprobe.executable {
            let watch = try FileOpenWatch([secret.path])
            _ = try runProgram(ffprobe, ["-v", "quiet"] + crafted.ffprobeOptions + ["-show_streams", upload.path])
            #expect(watch.accesses() > 0, "ffprobe did not follow \(crafted.name); the test input is not a threat")
        }

        let watch = try FileOpenWatch([secret.path])
        let error = try #require(throws: MediaError.self) { try Probe.inspect(path: upload.path) }
        #expect(error.code.rawValue == crafted.code, "\(error)")
        #expect(watch.accesses() == 0, "\(crafted.name) made media-worker open another file")
    }

    @Test func playlistOfURLsConnectsNowhere() throws {
        let listener = try TCPListener()
        let folder = try Fixtures.temporaryDirectory("hostile")
        let upload = folder.appendingPathComponent("clip.mp4")
        let playlist =
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\nhttp://127.0.0.1:\(listener.port)/secret.ts\n"
            + "#EXT-X-ENDLIST\n"
        try Data(playlist.utf8).write(to: upload)
        let sdp = folder.appendingPathComponent("stream.mp4")
        try Data(
            "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=video \(listener.port) RTP/AVP 96\na=rtpmap:96 H264/90000\n"
                .utf8
        ).write(to: sdp)
        for file in [upload, sdp] {
            let error = try #require(throws: MediaError.self) { try Probe.inspect(path: file.path) }
            #expect(error.code == .unsupported)
        }
        #expect(listener.connectionsSoFar() == 0)
    }

    @Test func oversizedFrameIsRefusedBeforeItIsDecoded() throws {
        let bomb = Fixtures.path("bomb_png_10000.mov")
        // FFmpeg's default probing decodes the 10000x10000 16-bit frame: 800 MB.
        if let ffprobe = FFprobe.executable {
            let judged = try runProgram(ffprobe, ["-v", "quiet", "-show_streams", bomb])
            #expect(judged.peakMemoryBytes > 700 << 20)
        }
        // Under 768 MiB of address space (a probe maps about 475 MiB: libraries, thread stacks,
        // malloc arenas; the frame alone needs 800 MB), it is refused by its header.
        // No Swift backtracer: under the limit it could not start, and would wait.
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        let result = try runProgram(
            Fixtures.executable, ["probe", "--max-memory", "768M", bomb], environment: environment, timeout: 60)
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("limits_exceeded: the video is 10000x10000"), "\(result.stderr)")
        let plain = try runProgram(
            Fixtures.executable, ["probe", "--max-memory", "768M", Fixtures.path("landscape_1080p_h264_aac.mp4")],
            environment: environment, timeout: 60)
        #expect(plain.status == 0, "\(plain.stderr)")
    }

    @Test func frameStampedHoursPastTheDeclaredDurationStopsTheWork() throws {
        let output = try Fixtures.temporaryDirectory("hostile")
        let request = MediaProcessor.Request(
            inputPath: Fixtures.path("timestamp_lie.mkv"), outputDirectory: output.path, type: .fullProcessing)
        let error = try #require(throws: MediaError.self) { try MediaProcessor.run(request, logger: .init(label: "t")) }
        #expect(error.code == .limitsExceeded)
        #expect(error.message.contains("36000 s"), "\(error.message)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: output.path).isEmpty)
    }

    /// Pixels declared 1:10000 wide made a 0-pixel-wide poster the scaler refused ("out of
    /// memory", blamed on media-worker): such ratios count as square, so every picture is 160x90,
    /// and the H.264 is re-encoded rather than copied with its 1:40 pixels.
    @Test func absurdPixelAspectRatioIsIgnored() throws {
        let output = try Fixtures.temporaryDirectory("hostile")
        let request = MediaProcessor.Request(
            inputPath: Fixtures.path("absurd_aspect.mp4"), outputDirectory: output.path, type: .fullProcessing)
        let report = try MediaProcessor.run(request, logger: .init(label: "t"))
        #expect(report.input.video.pixelAspectRatio == "1:10000")
        #expect(report.outputs[.video]?.encoder?.path == "transcode")
        for role in [OutputRole.poster, .thumbnail, .video, .preview] {
            let file = try #require(report.outputs[role]).path
            let judged = try #require(try FFprobe.describe(output.appendingPathComponent(file).path))
            let stream = try #require((judged["streams"] as? [[String: Any]])?.first)
            #expect(stream["width"] as? Int == 160 && stream["height"] as? Int == 90, "\(role): \(stream)")
            #expect(["1:1", nil].contains(stream["sample_aspect_ratio"] as? String), "\(role): \(stream)")
        }
    }

    /// 200 frames, the last 30 minutes after the rest: a filter that fills gaps with copies of the
    /// last frame encodes 107,000 frames; frames are only ever dropped, so the output has at most
    /// the 200 the input has.
    @Test func timestampGapIsNotFilledWithFrames() throws {
        let output = try Fixtures.temporaryDirectory("hostile")
        let request = MediaProcessor.Request(
            inputPath: Fixtures.path("timestamp_gap.mkv"), outputDirectory: output.path, type: .compression,
            allowRemux: false)
        let report = try MediaProcessor.run(request, logger: .init(label: "t"))
        let video = try #require(report.outputs[.video])
        let frames = try #require(try FFprobe.videoPacketCount(output.appendingPathComponent(video.path).path))
        #expect(frames <= 200 && frames >= 100, "\(frames) frames")
    }

    /// The work budget counts decoded pixels: a 2 s 1080p30 clip (124 Mpx) within the default
    /// share for 2 s, refused under a budget whose share is half of that.
    @Test func decodingWorkIsBoundedByTheBudget() throws {
        let output = try Fixtures.temporaryDirectory("hostile")
        var request = MediaProcessor.Request(
            inputPath: Fixtures.path("landscape_1080p_h264_aac.mp4"), outputDirectory: output.path,
            type: .compression, allowRemux: false)
        // The share of a 2 s input is 4 × (2 + 5) / 1800 of the whole budget.
        request.limits.maxDecodedPixels = 4_000_000_000
        let error = try #require(throws: MediaError.self) { try MediaProcessor.run(request, logger: .init(label: "t")) }
        #expect(error.code == .limitsExceeded && error.message.contains("megapixels"), "\(error)")
        request.limits = .default
        #expect(try MediaProcessor.run(request, logger: .init(label: "t")).outputs[.video]?.width == 1280)
    }
}
