import Foundation

/// How a video output was made, so anyone can reproduce it with the `ffmpeg` program
/// (`outputs.video.encoder` in the report).
public struct EncoderReport: Codable, Sendable, Equatable {
    /// `transcode` (decoded and encoded with libx264/AAC) or `remux` (streams copied as they were).
    public var path: String
    public var codec: String
    public var preset: String?
    public var crf: Int?
    public var maxrateKbps: Int?
    public var bufsizeKbps: Int?
    public var audioKbps: Int?
    public var width: Int
    public var height: Int
    public var fps: Double?
}

/// Whether a source can be copied into the output MP4 as it is, under a profile.
struct RemuxCheck {
    /// H.264 8-bit 4:2:0 video with square pixels and AAC or no audio: playable everywhere once
    /// in an MP4.
    let codecsCompatible: Bool
    /// …and within the profile's size, bit rate and frame rate cap: copy instead of encoding.
    let withinProfile: Bool
    /// …or within its size and frame rate but over its bit rate: the copy may still win if the
    /// encode comes out bigger. A copy larger than the profile's picture never does.
    let fitsPicture: Bool
    /// Why not, for the log.
    let reason: String

    init(_ info: MediaInfo, encoding: VideoEncoding) {
        let video = info.video
        var problems: [String] = []
        if video.codec != "h264" { problems.append("video is \(video.codec), not h264") }
        if ["h264", "hevc", "mpegvideo", "m4v"].contains(info.container) {
            problems.append("a raw \(info.container) stream has no timestamps of its own to copy")
        }
        if !["yuv420p", "yuvj420p"].contains(video.pixelFormat ?? "") {
            problems.append("pixels are \(video.pixelFormat ?? "unknown"), not 8-bit 4:2:0")
        }
        if let ratio = video.pixelAspectRatio { problems.append("pixels are \(ratio), not square") }
        if video.mirrored { problems.append("the display matrix mirrors the picture (not every player does)") }
        if !video.orientationExact { problems.append("the display matrix is not a quarter-turn rotation") }
        if video.edited { problems.append("the edit list cuts, repeats or retimes the video") }
        if let audio = info.audio, audio.codec != "aac" { problems.append("audio is \(audio.codec), not aac") }
        codecsCompatible = problems.isEmpty
        if min(video.width, video.height) > encoding.shortSideMax {
            problems.append("\(video.width)x\(video.height) is over the profile's \(encoding.shortSideMax) lines")
        }
        let bitRate = video.bitRate ?? info.bitRate ?? Int64.max
        if bitRate > Int64(encoding.maxrateKbps) * 1000 {
            problems.append("\(bitRate / 1000) kbit/s is over the profile's \(encoding.maxrateKbps)")
        }
        if (video.frameRate ?? 0) > encoding.fpsMax + 0.01 {
            problems.append("frame rate over \(Int(encoding.fpsMax))")
        }
        fitsPicture =
            codecsCompatible && min(video.width, video.height) <= encoding.shortSideMax
            && (video.frameRate ?? 0) <= encoding.fpsMax + 0.01
        withinProfile = problems.isEmpty
        reason = problems.isEmpty ? "compatible" : problems.joined(separator: "; ")
    }
}
