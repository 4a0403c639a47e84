/// Bounds that stop a hostile or absurd file from eating the host. Exceeding one is
/// `limits_exceeded`; the defaults suit a chat app.
public struct MediaLimits: Sendable, Equatable {
    /// Longest accepted input, in seconds (default 30 minutes).
    public var maxDurationSeconds: Double
    /// Largest accepted frame, in pixels (default 4096×2160, DCI 4K, either orientation).
    public var maxPixels: Int
    /// Highest accepted average frame rate (default 120).
    public var maxFrameRate: Double
    /// Largest accepted input file, in bytes (default 4 GiB).
    public var maxInputBytes: Int64

    public static let `default` = MediaLimits(
        maxDurationSeconds: 30 * 60, maxPixels: 4096 * 2160, maxFrameRate: 120, maxInputBytes: 4 << 30)

    public init(maxDurationSeconds: Double, maxPixels: Int, maxFrameRate: Double, maxInputBytes: Int64) {
        self.maxDurationSeconds = maxDurationSeconds
        self.maxPixels = maxPixels
        self.maxFrameRate = maxFrameRate
        self.maxInputBytes = maxInputBytes
    }

    /// Throws `limitsExceeded` naming the first limit `info` goes past.
    func check(_ info: MediaInfo) throws(MediaError) {
        let video = info.video
        if video.codedWidth * video.codedHeight > maxPixels {
            throw .limitsExceeded(
                "the video is \(video.codedWidth)x\(video.codedHeight), more than the \(maxPixels)-pixel limit; "
                    + "re-export it at 4K or less, or raise --max-pixels")
        }
        if let rate = video.frameRate, rate > maxFrameRate + 0.5 {
            throw .limitsExceeded(
                "the video runs at \(Int(rate.rounded())) fps, over the \(Int(maxFrameRate)) fps limit; "
                    + "re-export it at a lower frame rate, or raise --max-fps")
        }
        if let duration = info.durationMs, Double(duration) / 1000 > maxDurationSeconds {
            throw .limitsExceeded(
                "the video lasts \(duration / 1000) s, over the \(Int(maxDurationSeconds)) s limit; "
                    + "trim it, or raise --max-duration")
        }
    }
}
