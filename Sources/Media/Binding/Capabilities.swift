import CFFmpeg

/// What the linked FFmpeg libraries can do, for `media-worker doctor`: their versions and whether
/// the encoders, decoders and filters the stages use are built in.
public enum FFmpegCapabilities {
    /// `libavformat 59.27.100` and so on, for each library media-worker links.
    public static var libraryVersions: [(name: String, version: String)] {
        [
            ("libavformat", avformat_version()), ("libavcodec", avcodec_version()), ("libavutil", avutil_version()),
            ("libswscale", swscale_version()), ("libswresample", swresample_version()),
            ("libavfilter", avfilter_version()),
        ].map { ($0.0, "\($0.1 >> 16).\(($0.1 >> 8) & 0xff).\($0.1 & 0xff)") }
    }

    public static func hasEncoder(_ name: String) -> Bool { avcodec_find_encoder_by_name(name) != nil }
    public static func hasDecoder(_ name: String) -> Bool { avcodec_find_decoder_by_name(name) != nil }
    public static func hasFilter(_ name: String) -> Bool { avfilter_get_by_name(name) != nil }

    /// Encoders the outputs need: H.264 video, AAC audio, JPEG stills, AV1 variants.
    public static let requiredEncoders = ["libx264", "aac", "mjpeg", "libsvtav1", "libwebp"]
    /// Decoders of what phones and browsers upload.
    public static let expectedDecoders = ["h264", "hevc", "vp9", "av1", "aac", "opus", "pcm_s16le"]
    /// Filters of the display transform (rotation, scaling, HDR tone mapping, frame rate).
    public static let requiredFilters = [
        "buffer", "buffersink", "scale", "format", "setsar", "transpose", "zscale", "tonemap",
    ]
}

/// FFmpeg's own allocator, process-wide.
public enum FFmpegAllocations {
    /// No single FFmpeg allocation may exceed `bytes` (`av_max_alloc`): one that would fails as
    /// out of memory, before anything is touched.
    public static func limit(bytes: Int64) { av_max_alloc(Int(max(1 << 20, bytes))) }
}
