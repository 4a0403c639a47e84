/// The stages a job asks for (the `processingType` enum of `schema.md`).
public enum ProcessingType: String, CaseIterable, Codable, Sendable {
    case compression = "COMPRESSION"
    case thumbnail = "THUMBNAIL"
    case metadata = "METADATA"
    case preview = "PREVIEW"
    case fullProcessing = "FULL_PROCESSING"
}

/// Encoding quality (the `qualityProfile` enum of `schema.md`; a NULL column means MEDIUM).
public enum QualityProfile: String, CaseIterable, Codable, Sendable {
    case low = "LOW"
    case medium = "MEDIUM"
    case high = "HIGH"
    case ultra = "ULTRA"
}

/// A still image written by a stage (`poster`, `thumbnail`).
public struct StillImage: Codable, Sendable, Equatable {
    /// The output role: a key of `outputStorageKeys`.
    public var role: String
    /// Relative to the output folder.
    public var path: String
    public var width: Int
    public var height: Int
    public var bytes: Int
    /// Where in the video the frame was taken.
    public var timeMs: Int
    public var mimeType: String
    public var blurhash: String?
}

/// One output file, as the daemon will describe it in `outputMetadata`.
public struct OutputFile: Codable, Sendable, Equatable {
    /// Relative to the output folder.
    public var path: String
    public var width: Int
    public var height: Int
    public var bytes: Int
    public var mimeType: String
    /// For stills: where in the video the frame was taken.
    public var timeMs: Int?
    public var blurhash: String?
    /// For videos: as read back from the written file.
    public var durationMs: Int?
    public var videoCodec: String?
    public var audioCodec: String?
    /// For videos: how it was made.
    public var encoder: EncoderReport?

    init(_ still: StillImage) {
        path = still.path
        width = still.width
        height = still.height
        bytes = still.bytes
        mimeType = still.mimeType
        timeMs = still.timeMs
        blurhash = still.blurhash
    }

    /// Describes a written video from what its own headers say.
    init(video info: MediaInfo, path: String, encoder: EncoderReport?) {
        self.path = path
        width = info.video.width
        height = info.video.height
        bytes = Int(info.sizeBytes)
        mimeType = "video/mp4"
        durationMs = info.durationMs
        videoCodec = info.video.codec
        audioCodec = info.audio?.codec
        self.encoder = encoder
    }
}

/// What one run of the stages produced: `media-worker process --json` prints exactly this.
public struct ProcessingReport: Codable, Sendable, Equatable {
    public var type: ProcessingType
    public var profile: QualityProfile
    /// What METADATA found.
    public var input: MediaInfo
    /// Role → file.
    public var outputs: [String: OutputFile]
    public var thumbnails: [StillImage]
    public var elapsedMs: Int
    /// Undecodable packets skipped on the way, if any (a damaged but playable input).
    public var damage: DamageReport?
}
