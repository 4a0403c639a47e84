@_exported public import JobVocabulary

/// One file a stage produced: the one description of an output. The daemon wraps it once with
/// its storage key and URL (`StoredOutput`), and the columns it fills are encodings of that.
public struct OutputFile: Codable, Sendable, Equatable {
    public var role: OutputRole
    /// Relative to the output folder: a plain file name.
    public var path: String
    public var width: Int
    public var height: Int
    public var bytes: Int
    public var mimeType: String
    /// For videos: as read back from the written file.
    public var durationMs: Int?
    public var videoCodec: String?
    public var audioCodec: String?
    /// For videos: how it was made.
    public var encoder: EncoderReport?
    /// For stills: where in the video the frame was taken, and the picture as a BlurHash.
    public var timeMs: Int?
    public var blurhash: String?

    /// An output described field by field (e.g. as read back from where it was recorded).
    public init(
        role: OutputRole, width: Int, height: Int, bytes: Int, mimeType: String, durationMs: Int? = nil,
        videoCodec: String? = nil, audioCodec: String? = nil, encoder: EncoderReport? = nil, timeMs: Int? = nil,
        blurhash: String? = nil
    ) {
        self.role = role
        path = role.fileName
        self.width = width
        self.height = height
        self.bytes = bytes
        self.mimeType = mimeType
        self.durationMs = durationMs
        self.videoCodec = videoCodec
        self.audioCodec = audioCodec
        self.encoder = encoder
        self.timeMs = timeMs
        self.blurhash = blurhash
    }

    /// A still written from the frame at `timeMs`.
    init(still role: OutputRole, width: Int, height: Int, bytes: Int, timeMs: Int, blurhash: String) {
        self.init(
            role: role, width: width, height: height, bytes: bytes, mimeType: role.mimeType, timeMs: timeMs,
            blurhash: blurhash)
    }

    /// A written video, described from what its own headers say.
    init(video role: OutputRole, info: MediaInfo, encoder: EncoderReport?) {
        self.init(
            role: role, width: info.video.width, height: info.video.height, bytes: Int(info.sizeBytes),
            mimeType: role.mimeType, durationMs: info.durationMs, videoCodec: info.video.codec,
            audioCodec: info.audio?.codec, encoder: encoder)
    }
}

/// What one run of the stages produced: `media-worker process --json` prints exactly this.
public struct ProcessingReport: Codable, Sendable, Equatable {
    public var type: ProcessingType
    public var profile: QualityProfile
    /// What METADATA found.
    public var input: MediaInfo
    /// Role → file.
    public var outputs: [OutputRole: OutputFile]
    public var elapsedMs: Int
    /// Undecodable packets skipped on the way, if any (a damaged but playable input).
    public var damage: DamageReport?
    /// With `PieceWork.split`: the pieces the main video is to be made in (nil: made here).
    public var pieces: [Pieces.Span]?
    /// Why an efficient variant this run set out to make is not among the outputs (nil: none was
    /// left out). Also in `video`'s `encoder.why` when there is one.
    public var variantLeftOut: String?
}

extension ProcessingReport {
    /// The stills among the outputs (poster, thumbnail), in role order.
    public var stills: [OutputFile] { outputs.values.filter(\.role.isStill).sorted { $0.role < $1.role } }
}
