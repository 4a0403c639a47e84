import Foundation

/// How a video output was made, so anyone can reproduce it with the `ffmpeg` program
/// (`outputs.video.encoder` in the report).
public struct EncoderReport: Codable, Sendable, Equatable {
    /// `transcode` (the video decoded and encoded with libx264) or `remux` (the video's packets
    /// copied as they were).
    public var path: String
    /// The audio's path: `copy` (AAC packets as they were) or `encode` (decoded, AAC at
    /// `audioKbps`); nil without audio.
    public var audioPath: String?
    /// Why each stream took its path, and why this output won over the other one made beside it.
    public var why: [String]
    public var codec: String
    public var preset: String?
    public var crf: Int?
    public var maxrateKbps: Int?
    public var bufsizeKbps: Int?
    public var audioKbps: Int?
    public var width: Int
    public var height: Int
    public var fps: Double?
    /// How its audio was levelled (nil: no audio, or levelling off).
    public var loudness: LoudnessReport?
}

/// Which of a source's streams can be copied into an output MP4 of codec `videoCodec` as they
/// are, under a profile, decided stream by stream: a video that fits is copied even when its audio
/// must be converted, and an audio that fits is copied even when the video must be encoded.
struct CopyCheck {
    /// `videoCodec` video (H.264: 8-bit 4:2:0; HEVC and AV1: 8 or 10-bit 4:2:0) with square
    /// pixels, an exact quarter-turn display matrix and no edit list: playable once in an MP4.
    let videoCompatible: Bool
    /// …and within the profile's size, bit rate and frame rate cap: copy instead of encoding.
    let videoWithinProfile: Bool
    /// …or within its size and frame rate but over its bit rate: the copy may still win if the
    /// encode comes out bigger. A copy larger than the profile's picture never does.
    let videoFitsPicture: Bool
    /// Why the video is not copied as it is ("fits" when it is).
    let videoReason: String
    init(_ info: MediaInfo, encoding: VideoEncoding, videoCodec: String = "h264") {
        let video = info.video
        var problems: [String] = []
        if video.codec != videoCodec { problems.append("video is \(video.codec), not \(videoCodec)") }
        if ["h264", "hevc", "mpegvideo", "m4v"].contains(info.container) {
            problems.append("a raw \(info.container) stream has no timestamps of its own to copy")
        }
        let formats = videoCodec == "h264" ? ["yuv420p", "yuvj420p"] : ["yuv420p", "yuvj420p", "yuv420p10le"]
        if !formats.contains(video.pixelFormat ?? "") {
            problems.append(
                "pixels are \(video.pixelFormat ?? "unknown"), not \(videoCodec == "h264" ? "8-bit " : "")4:2:0")
        }
        if let ratio = video.pixelAspectRatio { problems.append("pixels are \(ratio), not square") }
        if video.mirrored { problems.append("the display matrix mirrors the picture (not every player does)") }
        if !video.orientationExact { problems.append("the display matrix is not a quarter-turn rotation") }
        if video.edited { problems.append("the edit list cuts, repeats or retimes the video") }
        if video.interlaced { problems.append("the picture is interlaced (not every phone shows fields)") }
        videoCompatible = problems.isEmpty
        let pictureFits = min(video.width, video.height) <= encoding.shortSideMax
        if !pictureFits {
            problems.append("\(video.width)x\(video.height) is over the profile's \(encoding.shortSideMax) lines")
        }
        let bitRate = video.bitRate ?? info.bitRate ?? Int64.max
        if bitRate > Int64(encoding.maxrateKbps) * 1000 {
            problems.append(
                bitRate == Int64.max
                    ? "the bit rate is unknown"
                    : "\(bitRate / 1000) kbit/s is over the profile's \(encoding.maxrateKbps)")
        }
        let rateFits = (video.frameRate ?? 0) <= encoding.fpsMax + 0.01
        if !rateFits { problems.append("frame rate over \(Int(encoding.fpsMax))") }
        videoFitsPicture = videoCompatible && pictureFits && rateFits
        videoWithinProfile = problems.isEmpty
        videoReason = problems.isEmpty ? "fits" : problems.joined(separator: "; ")
    }
}
