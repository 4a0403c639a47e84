import Foundation
import Logging
import Media
import TestSupport
import Testing

/// Runs COMPRESSION on a fixture, in pieces of `pieceSeconds` or in one pass (nil), and hands the
/// report and the video's path to `body`.
private func compressed<R>(
    _ file: String, pieceSeconds: Double?, allowRemux: Bool = true, _ body: (ProcessingReport, String) throws -> R
) throws -> R {
    let directory = try Fixtures.temporaryDirectory("pieces")
    defer { try? FileManager.default.removeItem(at: directory) }
    var request = MediaProcessor.Request(
        inputPath: Fixtures.path(file), outputDirectory: directory.path, type: .compression, allowRemux: allowRemux)
    request.pieceSeconds = pieceSeconds
    let report = try MediaProcessor.run(request, logger: Logger(label: "test"))
    let video = try #require(report.outputs[.video])
    return try body(report, directory.appendingPathComponent(video.path).path)
}

/// Per-frame SSIM (all planes) of the video at `path` against `source`, by `ffprobe`'s lavfi input.
private func frameSSIM(_ path: String, against source: String) throws -> [Double] {
    let graph = "movie=\(path),format=yuv420p[a];movie=\(source),format=yuv420p[b];[a][b]ssim"
    let output = try runProgram(
        try #require(FFprobe.executable),
        [
            "-v", "error", "-f", "lavfi", "-i", graph, "-show_entries", "frame_tags=lavfi.ssim.All",
            "-of", "csv=p=0",
        ])
    return String(decoding: output.stdout, as: UTF8.self).split(separator: "\n").compactMap { Double($0) }
}

/// Presentation times of the video's packets, sorted, by `ffprobe`.
private func frameTimes(_ path: String) throws -> [String] {
    let output = try runProgram(
        try #require(FFprobe.executable),
        ["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts", "-of", "csv=p=0", path])
    return String(decoding: output.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        .sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }
}

/// A long video made in pieces (cut at keyframes, or with a short decode before the cut where
/// keyframes are sparse) and joined without re-encoding plays as one encode of it would.
@Suite("Long videos in pieces", .oneAtATime)
struct PiecesTests {
    /// `long_hevc_720p_20s.mp4` has keyframes at 0, 8.3 and 16.7 s: in 4 s pieces, cuts at 4 and
    /// 12.3 s fall between keyframes, each decoding 4 s before it; together more than a quarter
    /// of the video, so the costlier goes and 4 pieces are left. Every frame is there once, at its time, the audio made once lasts
    /// as long, the picture is as good as one pass's, with no join to see, and the free
    /// `video_hevc` copy is made as without pieces.
    @Test func piecesPlayAsOneEncode() throws {
        let source = Fixtures.path("long_hevc_720p_20s.mp4")
        let (single, singleTimes, singleSSIM) = try compressed("long_hevc_720p_20s.mp4", pieceSeconds: nil) {
            ($0, try frameTimes($1), try frameSSIM($1, against: source))
        }
        try compressed("long_hevc_720p_20s.mp4", pieceSeconds: 4) { report, path in
            let encoder = try #require(report.outputs[.video]?.encoder)
            #expect(encoder.why.first?.hasPrefix("video encoded in 4 pieces") == true, "\(encoder.why)")
            #expect(encoder.audioPath == "encode")
            // The upload's own HEVC is still copied beside it, for phones that play it.
            #expect(report.outputs[.videoHevc]?.encoder?.path == "remux")
            #expect(try frameTimes(path) == singleTimes, "every frame once, at its own time")
            let durations = { (report: ProcessingReport) in report.outputs[.video]?.durationMs ?? 0 }
            #expect(abs(durations(report) - durations(single)) <= 34)
            let streams = try #require(try FFprobe.describe(path)?["streams"] as? [[String: Any]])
            let lengths = streams.compactMap { ($0["duration"] as? String).flatMap(Double.init) }
            #expect(lengths.count == 2 && lengths.allSatisfy { abs($0 - 20) < 0.034 }, "\(lengths)")
            let ssim = try frameSSIM(path, against: source)
            #expect(ssim.count == singleSSIM.count && ssim.count == 600)
            let mean = { (values: [Double]) in values.reduce(0, +) / Double(max(1, values.count)) }
            #expect(mean(ssim) >= 0.999 * mean(singleSSIM), "pieces \(mean(ssim)), one pass \(mean(singleSSIM))")
            // No frame, the first of a piece included, is worse than in one pass by 0.005.
            let worse = zip(ssim, singleSSIM).enumerated().filter { $0.element.0 < $0.element.1 - 0.005 }
            #expect(worse.isEmpty, "frames worse than in one pass: \(worse.prefix(5))")
        }
    }

    /// Odd inputs in pieces of a second: every frame at the same time as in one pass, upright at
    /// the same size: rotated HEVC, variable frame rate, 240 fps slow motion capped at 60, a
    /// damaged middle (a piece with no decodable frame), an MPEG program stream (which seeks by
    /// bytes, past the keyframe asked for), repeated frames, a mid-stream size change.
    /// (The 2 s `portrait_hevc_rot90.mov` and `vfr.mp4`, one keyframe each, are one pass in 1 s
    /// pieces: a cut would cost more decoding than a quarter of the video.)
    @Test(arguments: [
        ("portrait_hevc_rot90.mov", false), ("vfr.mp4", false), ("slowmo_240fps.mp4", true),
        ("damaged_middle.mp4", true), ("mpeg2_ps.mpg", true), ("repeat_frames.ivf", true),
        ("resolution_change.webm", true),
    ])
    func rotationAndFrameTimesSurviveTheCuts(_ file: String, cut: Bool) throws {
        let (size, times) = try compressed(file, pieceSeconds: nil, allowRemux: false) { report, path in
            (report.outputs[.video].map { [$0.width, $0.height] }, try frameTimes(path))
        }
        try compressed(file, pieceSeconds: 1, allowRemux: false) { report, path in
            let video = try #require(report.outputs[.video])
            #expect(video.encoder?.why.first?.contains("pieces") == cut, "\(video.encoder?.why ?? [])")
            #expect([video.width, video.height] == size)
            #expect(try frameTimes(path) == times)
        }
    }

    /// One keyframe at the start of 30 s: each 5 s piece would decode from it, the fleet's work
    /// growing with the square of the pieces. Cuts are dropped, costliest first, until all pieces
    /// together decode at most a quarter more than one pass: the cut at 5 s is left (pieces
    /// decoding 5 + 30 s of a 30 s video), every frame kept.
    @Test func sparseKeyframesCostAtMostAQuarterMoreDecoding() throws {
        try compressed("sparse_keyframes.mp4", pieceSeconds: 5, allowRemux: false) { report, path in
            #expect(report.outputs[.video]?.encoder?.why.first?.hasPrefix("video encoded in 2 pieces") == true)
            let frames = try FFprobe.videoPacketCount(path)
            #expect(frames == 900)
        }
    }

    /// A clip shorter than two pieces, one whose video is copied, or one whose frames all fall
    /// in one piece (2 s of frames, then a timestamp jump to 30 minutes) is one pass.
    @Test func shortOrCopiedVideosAreNotCut() throws {
        try compressed("timestamp_gap.mkv", pieceSeconds: 30, allowRemux: false) { report, _ in
            #expect(report.outputs[.video]?.encoder?.why.first == "video encoded: copies are off")
        }
        try compressed("portrait_rot90.mp4", pieceSeconds: 10, allowRemux: false) { report, _ in
            #expect(report.outputs[.video]?.encoder?.why.first == "video encoded: copies are off")
        }
        try compressed("portrait_rot90.mp4", pieceSeconds: 1) { report, _ in
            #expect(report.outputs[.video]?.encoder?.path == "remux")
        }
    }
}
