import Foundation
import Media
import TestSupport
import Testing

/// Where each stream of `path` starts and how long it lasts, in seconds, by `ffprobe`.
private func streamTimes(_ path: String) throws -> [String: (start: Double, duration: Double)] {
    let streams = try #require(try FFprobe.describe(path)?["streams"] as? [[String: Any]])
    return try streams.reduce(into: [:]) { times, stream in
        let kind = try #require(stream["codec_type"] as? String)
        let start = try #require((stream["start_time"] as? String).flatMap(Double.init))
        let duration = try #require((stream["duration"] as? String).flatMap(Double.init))
        times[kind] = (start, duration)
    }
}

/// The main video's copy is decided on its own: a video that fits is copied while its audio is
/// encoded (audio always is), and an encode that comes out larger than the copy made beside it
/// loses.
@Suite("Copies stream by stream", .oneAtATime)
struct StreamCopyTests {
    /// H.264 that fits MEDIUM beside PCM audio: the video packets are the source's, bit for bit,
    /// the audio AAC, both starting together and lasting as long as the source's.
    @Test func videoIsCopiedWhileItsAudioIsConverted() throws {
        let source = Fixtures.path("h264_pcm.mkv")
        try withProcessed("h264_pcm.mkv", type: .compression) { report, directory in
            let video = try #require(report.outputs[.video])
            let encoder = try #require(video.encoder)
            #expect(encoder.path == "remux" && encoder.audioPath == "encode", "\(encoder.why)")
            #expect(encoder.why.contains { $0.hasPrefix("audio encoded: pcm_s16le is not AAC") })
            #expect(video.audioCodec == "aac")
            let path = directory.appendingPathComponent(video.path).path
            let copied = try #require(try FFprobe.packetHashes(path, stream: "v:0"))
            let original = try FFprobe.packetHashes(source, stream: "v:0")
            #expect(copied.count == 60 && copied == original)
            let times = try streamTimes(path)
            let (audio, picture) = (try #require(times["audio"]), try #require(times["video"]))
            #expect(
                abs(audio.start - picture.start) < 0.001, "audio starts at \(audio.start), video at \(picture.start)")
            #expect(abs(audio.duration - 2) < 1.0 / 30 && abs(picture.duration - 2) < 1.0 / 30)
            #expect(video.bytes < Int(try Probe.inspect(path: source).sizeBytes))
        }
    }

    /// 1080p H.264 over MEDIUM's 720 lines with 96 kbit/s AAC that would fit: the video is encoded
    /// and so is the audio (an AAC copy could carry what the uploader's app wrote beside the sound),
    /// at the source's rate, keeping its place against the video and its length.
    @Test func audioIsEncodedEvenWhenItWouldFit() throws {
        let source = Fixtures.path("landscape_1080p_h264_aac.mp4")
        try withProcessed("landscape_1080p_h264_aac.mp4", type: .compression) { report, directory in
            let video = try #require(report.outputs[.video])
            let encoder = try #require(video.encoder)
            #expect(encoder.path == "transcode" && encoder.audioPath == "encode", "\(encoder.why)")
            #expect(encoder.why.contains("audio encoded: AAC is encoded again, never copied"), "\(encoder.why)")
            #expect(encoder.audioKbps == 96 && video.height == 720)
            let path = directory.appendingPathComponent(video.path).path
            let (written, original) = (try streamTimes(path), try streamTimes(source))
            let offset = { (times: [String: (start: Double, duration: Double)]) in
                (times["audio"]?.start ?? .nan) - (times["video"]?.start ?? .nan)
            }
            #expect(abs(offset(written) - offset(original)) < 1.0 / 30, "\(offset(written)) vs \(offset(original))")
            #expect(abs((written["audio"]?.duration ?? 0) - (original["audio"]?.duration ?? 0)) < 0.025)
        }
    }

    /// Under LOW the same blurry clip is over the bit rate (its PCM counts), so the encode is made
    /// beside the copy; re-encoding an already blurry picture costs more bytes, so the copy wins,
    /// and the report says why.
    @Test func anEncodeLargerThanTheCopyLoses() throws {
        let source = try Probe.inspect(path: Fixtures.path("h264_pcm.mkv"))
        try withProcessed("h264_pcm.mkv", type: .compression, profile: .low) { report, directory in
            let video = try #require(report.outputs[.video])
            let encoder = try #require(video.encoder)
            let verdict = try #require(encoder.why.last)
            #expect(encoder.path == "remux" && verdict.hasPrefix("kept the copy"), "\(encoder.why)")
            let sizes = verdict.matches(of: /(\d+) bytes|copy (\d+)/).compactMap { Int($0.1 ?? $0.2 ?? "") }
            #expect(sizes.count == 2 && sizes[0] > sizes[1], "\(verdict)")
            #expect(video.bytes == sizes.last && video.bytes < Int(source.sizeBytes))
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix(".") } == [])
        }
    }
}
