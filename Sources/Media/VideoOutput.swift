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
    /// Why not, for the log.
    let reason: String

    init(_ info: MediaInfo, encoding: VideoEncoding) {
        let video = info.video
        var problems: [String] = []
        if video.codec != "h264" { problems.append("video is \(video.codec), not h264") }
        if !["yuv420p", "yuvj420p"].contains(video.pixelFormat ?? "") {
            problems.append("pixels are \(video.pixelFormat ?? "unknown"), not 8-bit 4:2:0")
        }
        if let ratio = video.pixelAspectRatio { problems.append("pixels are \(ratio), not square") }
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
        withinProfile = problems.isEmpty
        reason = problems.isEmpty ? "compatible" : problems.joined(separator: "; ")
    }
}
