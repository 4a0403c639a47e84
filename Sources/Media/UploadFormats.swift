/// The container formats an upload may be, by the names of FFmpeg's demuxers. The format is
/// decided from the file's bytes (never its name), and anything not listed is refused before a
/// demuxer parses it: playlists (HLS), manifests (DASH), concat scripts, image sequences and
/// session descriptions are how a crafted upload makes FFmpeg open other files or URLs, and
/// images, subtitles and audio-only formats are not videos anyway.
enum UploadFormats {
    /// MP4, MOV, M4V, 3GP: what phones write, and what this program writes (read back by the
    /// byte budget and the join of a long video's pieces).
    static let mp4 = "mov,mp4,m4a,3gp,3g2,mj2"

    static let accepted: Set<String> = [
        mp4,
        "matroska,webm",  // MKV, WebM (browsers, screen recorders)
        "avi",
        "mpeg",  // MPEG program stream: VOB, .mpg
        "mpegts",  // transport stream: camcorders (.mts), broadcast captures
        "flv",
        "asf",  // WMV
        "ogg",  // Theora
        "dv",
        "ivf",  // VP8/VP9/AV1 in their simplest container
        "h264", "hevc", "mpegvideo", "m4v",  // raw elementary streams some cameras write
    ]

    /// A refused format as a person would name it.
    static func describe(_ demuxer: String) -> String {
        switch demuxer {
        case "hls": "an HLS playlist (a list of other files)"
        case "dash": "a DASH manifest (a list of other files)"
        case "concat": "an FFmpeg concat script (a list of other files)"
        case "sdp", "rtsp": "a network stream description"
        case let name where name.hasPrefix("image2") || name.hasSuffix("_pipe"): "a still image"
        default: "a \(demuxer) file"
        }
    }
}
