import Foundation
import Logging
import Media
import TestSupport
import Testing

/// A real-world kind of file, and what its compressed output must be.
struct VarietyCase: Sendable, CustomTestStringConvertible {
    var file: String
    var container: String
    var codec: String
    var audio: String?
    /// The upright output size under MEDIUM.
    var output: (Int, Int)
    /// The highest frame rate the output may have.
    var maxFrameRate = 60.0

    var testDescription: String { file }
}

let varietyCases: [VarietyCase] = [
    .init(file: "theora_vorbis.ogg", container: "ogg", codec: "theora", audio: "vorbis", output: (320, 180)),
    .init(file: "vp8_vorbis.webm", container: "webm", codec: "vp8", audio: "vorbis", output: (320, 180)),
    .init(file: "wmv2_wma.wmv", container: "asf", codec: "wmv2", audio: "wmav2", output: (320, 180)),
    .init(file: "mpeg2_ps.mpg", container: "mpeg", codec: "mpeg2video", audio: "mp2", output: (320, 180)),
    // PAL DV: 720x576 stored, 16:15 pixels, shown 768x576.
    .init(file: "dv_pal.dv", container: "dv", codec: "dvvideo", audio: "pcm_s16le", output: (768, 576)),
    .init(file: "h263_qcif.3gp", container: "mp4", codec: "h263", audio: "aac", output: (352, 288)),
    .init(file: "mpeg4_mp3.avi", container: "avi", codec: "mpeg4", audio: "mp3", output: (320, 180)),
    .init(file: "mjpeg_adpcm.avi", container: "avi", codec: "mjpeg", audio: "adpcm_ima_wav", output: (320, 180)),
    .init(file: "slowmo_240fps.mp4", container: "mp4", codec: "h264", audio: "aac", output: (640, 360)),
    .init(file: "resolution_change.webm", container: "webm", codec: "vp8", audio: nil, output: (320, 180)),
    .init(file: "stream_changes.ts", container: "mpegts", codec: "h264", audio: "mp2", output: (320, 180)),
    .init(file: "damaged_middle.mp4", container: "mp4", codec: "h264", audio: "aac", output: (320, 180)),
    .init(file: "slow_last_frame.mp4", container: "mp4", codec: "h264", audio: "aac", output: (320, 180)),
]

@Suite("Every video FFmpeg can read", .oneAtATime)
struct VarietyTests {
    /// Old codecs, odd containers, slow motion, mid-stream changes, damage and a slow last frame:
    /// each becomes an upright H.264/AAC MP4 as long as its source, its streams ending together.
    @Test(arguments: varietyCases)
    func convertsLikeFFmpegOrBetter(_ variety: VarietyCase) throws {
        let source = try Probe.inspect(path: Fixtures.path(variety.file))
        #expect(source.container == variety.container && source.video.codec == variety.codec)
        #expect(source.audio?.codec == variety.audio)
        try withProcessed(variety.file, type: .fullProcessing, allowRemux: false) { report, directory in
            #expect(
                Set(report.outputs.keys.filter { !$0.isEfficientVariant }) == [.video, .preview, .poster, .thumbnail])
            let video = try #require(report.outputs[.video])
            let path = directory.appendingPathComponent(video.path).path
            let written = try Probe.inspect(path: path)
            #expect(written.video.codec == "h264" && written.video.pixelFormat == "yuv420p")
            #expect(written.audio?.codec == (variety.audio == nil ? nil : "aac"))
            #expect((written.video.width, written.video.height) == variety.output)
            #expect((written.video.frameRate ?? 0) <= variety.maxFrameRate + 0.5, "\(written.video.frameRate ?? 0) fps")
            expectUpright(try Snapshot.firstFrame(of: path), "\(variety.file) video")
            expectUpright(
                try Snapshot.firstFrame(of: directory.appendingPathComponent("poster.jpg").path),
                "\(variety.file) poster")

            // As long as the source's video, and audio ending with it.
            guard let judged = try streamDurations(path),
                let sourceStreams = try streamDurations(Fixtures.path(variety.file))
            else { return }
            let sourceVideo = sourceStreams["video"] ?? Double(source.durationMs ?? 0) / 1000
            let outputVideo = try #require(judged["video"])
            #expect(abs(outputVideo - sourceVideo) <= 0.05, "video lasts \(outputVideo) s, source \(sourceVideo) s")
            if let outputAudio = judged["audio"] {
                let sourceGap = sourceStreams["audio"].map { sourceVideo - $0 } ?? 0
                #expect(
                    abs(outputVideo - outputAudio - sourceGap) <= 0.1,
                    "video \(outputVideo) s, audio \(outputAudio) s, source gap \(sourceGap) s")
            }
        }
    }

    /// 240 fps slow motion keeps its timing at 60 fps (every fourth frame), and LOW caps at 30.
    @Test(arguments: [(QualityProfile.medium, 120), (.low, 60)])
    func slowMotionIsCappedNotRefused(_ profile: QualityProfile, _ frames: Int) throws {
        try withProcessed("slowmo_240fps.mp4", type: .compression, profile: profile, allowRemux: false) {
            report, directory in
            let path = directory.appendingPathComponent(try #require(report.outputs[.video]).path).path
            let count = try FFprobe.videoPacketCount(path)
            #expect(count.map { abs($0 - frames) <= 1 } ?? true, "\(count ?? 0) frames")
            #expect(abs(Double(try Probe.inspect(path: path).durationMs ?? 0) - 2000) <= 20)
        }
    }

    /// A run of damaged packets in the middle is skipped, as players do, and reported.
    @Test func damagedMiddleIsSkippedAndReported() throws {
        try withProcessed("damaged_middle.mp4", type: .compression, allowRemux: false) { report, _ in
            let damage = try #require(report.damage)
            #expect(damage.videoPacketsSkipped > 0 && damage.videoPacketsSkipped <= 8, "\(damage)")
        }
    }

    /// Sound that starts a second before the picture (a tone in that second, silence after) stays
    /// with the picture in an encode: the output starts with the first picture and its sound is
    /// silent (but for the tail of the audio frame reaching past the picture's start, kept whole),
    /// not the tone moved under the picture (which put it a second early), and lasts as long as the
    /// picture.
    @Test func soundBeforeThePictureIsLeftOutNotMovedUnderIt() throws {
        try withProcessed("early_audio.mkv", type: .compression, allowRemux: false) { report, directory in
            let path = directory.appendingPathComponent(try #require(report.outputs[.video]).path).path
            let streams = try #require(try FFprobe.streamDurations(path))
            #expect(abs((streams["audio"] ?? 0) - (streams["video"] ?? 0)) <= 0.05, "\(streams)")
            let level = try #require(try FFprobe.audioLevel(path, from: 0.1, to: 0.9))
            #expect(level < -60, "the output's first second: \(level) dBFS")
        }
    }

    /// Two transport streams joined end to end (`cat a.ts b.ts`, as recorders and cutters make
    /// them): the second's timestamps restart at the first's start. Both halves are kept, one after
    /// the other, as the `ffmpeg` program keeps them (the second half was silently lost), and the
    /// report says where the timestamps jumped.
    @Test func aJoinedTransportStreamKeepsBothHalves() throws {
        let folder = try Fixtures.temporaryDirectory("joined-ts")
        defer { try? FileManager.default.removeItem(at: folder) }
        let half = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("stream_changes.ts")))
        let input = folder.appendingPathComponent("joined.ts")
        try (half + half).write(to: input)
        let halfSeconds =
            Double(try #require(try Probe.inspect(path: Fixtures.path("stream_changes.ts")).durationMs)) / 1000
        // In one pass, and asked for pieces of a second: pieces are found by their times, which
        // here name two places each, so it is one pass too.
        for pieceSeconds in [nil, 1.0] {
            let out = folder.appendingPathComponent("out-\(pieceSeconds ?? 0)")
            var request = MediaProcessor.Request(
                inputPath: input.path, outputDirectory: out.path, type: .compression, allowRemux: false)
            request.pieceSeconds = pieceSeconds
            let report = try MediaProcessor.run(request, logger: Logger(label: "t"))
            let video = try #require(report.outputs[.video])
            let streams = try #require(try FFprobe.streamDurations(out.appendingPathComponent(video.path).path))
            #expect(abs((streams["video"] ?? 0) - 2 * halfSeconds) <= 0.07, "\(streams) for 2 × \(halfSeconds)")
            #expect(abs((streams["audio"] ?? 0) - 2 * halfSeconds) <= 0.07, "\(streams) for 2 × \(halfSeconds)")
            #expect(video.encoder?.why.contains { $0.hasPrefix("the input's timestamps jump at 1.9") } == true)
            #expect(video.encoder?.why.first?.contains("pieces") == false)
        }
    }

    /// Damage scattered over the whole file (every 97th byte of the media data flipped) leaves
    /// pictures and sound coming, as players show it and the `ffmpeg` program converts it: converted,
    /// with what was skipped in the report, and no burst of noise from the audio it garbled.
    @Test func scatteredDamageConvertsAndIsReported() throws {
        let input = try damaged { bytes, start in
            for index in stride(from: start + 2000, to: bytes.count - 1000, by: 97) { bytes[index] ^= 0xA5 }
        }
        let report = try MediaProcessor.run(request(input), logger: Logger(label: "t"))
        let damage = try #require(report.damage)
        #expect(damage.audioPacketsSkipped > 100 && damage.videoPacketsSkipped > 0, "\(damage)")
        let video = try #require(report.outputs[.video])
        #expect(abs((video.durationMs ?? 0) - 4000) <= 40)
        let peak = try #require(video.encoder?.loudness?.measuredTruePeakDbtp)
        #expect(peak < 3, "decoded noise reached the output: \(peak) dBTP")
    }

    /// Damage past the threshold is `corrupt_input`, never `internal`: here nothing decodes for
    /// over two seconds (two thirds of the media data overwritten).
    @Test func heavyDamageIsCorruptInput() throws {
        let input = try damaged { bytes, start in
            let (from, to) = (start + (bytes.count - start) / 4, start + (bytes.count - start) * 11 / 12)
            for index in from..<to { bytes[index] ^= 0xA5 }
        }
        let error = try #require(throws: MediaError.self) {
            try MediaProcessor.run(request(input), logger: Logger(label: "t"))
        }
        #expect(error.code == .corruptInput, "\(error)")
        #expect("\(error)".contains("could be decoded for"), "\(error)")
    }

    /// `damaged_middle.mp4` with `damage` done to its bytes (given the offset of its media data).
    private func damaged(_ damage: (inout [UInt8], Int) -> Void) throws -> URL {
        let folder = try Fixtures.temporaryDirectory("damaged")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("damaged_middle.mp4"))))
        damage(&bytes, try #require(bytes.firstRange(of: Array("mdat".utf8))).upperBound)
        let input = folder.appendingPathComponent("heavily_damaged.mp4")
        try Data(bytes).write(to: input)
        return input
    }

    private func request(_ input: URL) -> MediaProcessor.Request {
        MediaProcessor.Request(
            inputPath: input.path,
            outputDirectory: input.deletingLastPathComponent().appendingPathComponent("out").path,
            type: .compression, allowRemux: false)
    }
}
