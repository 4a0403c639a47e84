import Foundation
import JobVocabulary

/// The encode settings of one output, in the terms of `ffmpeg`'s command line, so anyone can
/// reproduce an encode from the report.
public struct VideoEncoding: Sendable, Equatable, Codable {
    /// The video codec the encoding makes.
    public var codec = VideoCodec.h264
    /// The longest the shorter side may be; the output is never upscaled.
    public var shortSideMax: Int
    public var crf: Int
    public var preset: String
    public var maxrateKbps: Int
    public var bufsizeKbps: Int
    /// AAC bit rate, or nil for a muted output.
    public var audioKbps: Int?
    /// Frame rate cap: faster sources lose frames down to this rate (never gain any).
    public var fpsMax: Double
    /// x264's two passes, for a byte budget: the first (the CRF encode) writes its statistics,
    /// the second encodes to a bit rate from them.
    public var pass: RatePass? = nil

    /// One of x264's two passes; `stats` is the statistics file both use.
    public enum RatePass: Sendable, Equatable, Codable {
        case first(stats: String)
        case second(stats: String, kilobitsPerSecond: Int)
    }
}

extension QualityProfile {
    /// The profile table (also in the Media article). Tuned on the fixtures and the benchmark's
    /// inputs; the Media article gives sizes and SSIM measured with them.
    public var encoding: VideoEncoding {
        switch self {
        case .low:
            VideoEncoding(
                shortSideMax: 480, crf: 28, preset: "veryfast", maxrateKbps: 1000, bufsizeKbps: 2000, audioKbps: 64,
                fpsMax: 30)
        case .medium:
            VideoEncoding(
                shortSideMax: 720, crf: 24, preset: "veryfast", maxrateKbps: 2500, bufsizeKbps: 5000, audioKbps: 128,
                fpsMax: 60)
        case .high:
            VideoEncoding(
                shortSideMax: 1080, crf: 22, preset: "faster", maxrateKbps: 5000, bufsizeKbps: 10000, audioKbps: 160,
                fpsMax: 60)
        case .ultra:
            VideoEncoding(
                shortSideMax: 2160, crf: 20, preset: "medium", maxrateKbps: 16000, bufsizeKbps: 32000, audioKbps: 192,
                fpsMax: 60)
        }
    }
}

/// The video codecs media-worker encodes, with the FFmpeg encoder that makes each.
public enum VideoCodec: String, Sendable, Equatable, Codable {
    case h264
    case av1

    /// The encoder's name in FFmpeg (`-c:v`).
    var encoderName: String {
        switch self {
        case .h264: "libx264"
        case .av1: "libsvtav1"
        }
    }
}

extension QualityProfile {
    /// The profile's AV1 encoding (`video_av1`): the same picture limits, SVT-AV1 preset 10 at a
    /// CRF chosen to match the H.264 encoding's SSIM on the benchmark's real-world clips (about 0.7×
    /// the bytes at 1.8× the CPU; see the Benchmarks article), capped at the same peak rate.
    public var av1Encoding: VideoEncoding {
        var encoding = self.encoding
        encoding.codec = .av1
        encoding.preset = "10"
        encoding.crf =
            switch self {
            case .low: 42
            case .medium: 37
            case .high: 35
            case .ultra: 32
            }
        return encoding
    }
}

extension QualityProfile {
    /// CPU seconds per second of 1080p30 input a job's budget allows: four times what the benchmark
    /// measured at MEDIUM (0.37), more for slower presets (see `ResourceBudget`).
    public var cost: Double {
        switch self {
        case .low: 1
        case .medium: 1.5
        case .high: 3
        case .ultra: 8
        }
    }

    /// Seconds a 2-core host takes per second of input (the benchmark's realtime factors), for
    /// `estimatedDurationSeconds`.
    public var secondsPerSecond: Double {
        switch self {
        case .low: 0.12
        case .medium: 0.22
        case .high: 0.5
        case .ultra: 1.0
        }
    }
}

extension VideoEncoding {
    /// The chat bubble's muted loop: short side at most 360, at most 24 fps, aiming under 300 KB
    /// for its 3 seconds (800 kbit/s at most, 600 on average).
    static let preview = VideoEncoding(
        shortSideMax: 360, crf: 28, preset: "veryfast", maxrateKbps: 600, bufsizeKbps: 1200, audioKbps: nil,
        fpsMax: 24)

    /// Longest preview clip, in seconds.
    static let previewSeconds = 3.0

    /// The output size for a `width`×`height` (displayed) input: the shorter side brought down to
    /// `shortSideMax` if larger, aspect ratio kept, both sides even (H.264 4:2:0 needs it).
    func outputSize(width: Int, height: Int) -> (width: Int, height: Int) {
        let shortSide = min(width, height)
        let scale = shortSide > shortSideMax ? Double(shortSideMax) / Double(shortSide) : 1
        func even(_ value: Double) -> Int { max(2, Int((value / 2 + 1e-6).rounded(.down)) * 2) }
        return (even(Double(width) * scale), even(Double(height) * scale))
    }
}

extension VideoEncoding {
    /// The lowest peak rate a fitted encoding gets, in kbit/s (a header's nonsense is no rate).
    static let lowestFittedKbps = 8

    /// The encoding for `info`'s video: its peak rate brought down to what the upload itself
    /// spends on its picture, scaled by the share of its pixels the output keeps (to the power
    /// 0.75: a smaller picture needs more bits per pixel; never more than all of them: non-square
    /// pixels made square add none) and by how far the upload's codec's bits go against the
    /// encoding's (`efficiency`: H.264 from HEVC 1.5×, AV1 from H.264 0.56×), with a buffer of
    /// one second (a 4 s clip cannot spend its first seconds' bits at three times the
    /// rate). An upload richer than the profile keeps the profile's rate.
    func fitted(to info: MediaInfo) -> VideoEncoding {
        guard let sourceBits = Self.videoBitsPerSecond(info) else { return self }
        let size = outputSize(width: info.video.width, height: info.video.height)
        let pixels = Double(size.width * size.height) / Double(max(1, info.video.codedWidth * info.video.codedHeight))
        let kept = pow(min(1, pixels), 0.75)
        let factor = Self.efficiency(of: info.video.codec) / Self.efficiency(of: codec.rawValue)
        let cap = max(Self.lowestFittedKbps, Int((Double(sourceBits) * kept * factor / 1000).rounded(.up)))
        guard cap < maxrateKbps else { return self }
        var fitted = self
        (fitted.maxrateKbps, fitted.bufsizeKbps) = (cap, cap)
        return fitted
    }

    /// How far a codec's bits go, against H.264's: the bytes H.264 needs for the same picture are
    /// this many times the codec's (HEVC and VP9 1.5, AV1 1.8, older codecs 1).
    private static func efficiency(of codec: String) -> Double {
        switch codec {
        case "hevc", "vp9": 1.5
        case "av1": 1.8
        default: 1.0
        }
    }

    /// What the upload spends on its picture, in bit/s: the larger of the video stream's own rate
    /// and the whole file's rate less the audio's, when both are known and within 2× of each
    /// other. Either alone may mislead (a Matroska header states no rate; a file whose timestamps
    /// jump spreads its bytes over a duration its frames do not fill), so an encoding is fitted
    /// only where the two agree.
    private static func videoBitsPerSecond(_ info: MediaInfo) -> Int64? {
        guard let declared = info.video.bitRate, declared > 0, let milliseconds = info.durationMs, milliseconds > 0
        else { return nil }
        let measured = info.sizeBytes * 8_000 / Int64(milliseconds) - (info.audio?.bitRate ?? 0)
        guard measured > 0, measured <= 2 * declared, declared <= 2 * measured else { return nil }
        return max(declared, measured)
    }
}
