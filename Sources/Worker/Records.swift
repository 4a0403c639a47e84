import Media

/// `outputMetadata[role]`: a stored output.
struct OutputRecord: Encodable, Sendable {
    let key: String
    let url: String
    let width: Int
    let height: Int
    let bytes: Int
    let mimeType: String
    let durationMs: Int?
    let videoCodec: String?
    let audioCodec: String?
    let timeMs: Int?
    let blurhash: String?
    let encoder: EncoderReport?
    /// On the `video` role of a damaged but playable input: the packets skipped.
    let damage: DamageReport?

    init(_ output: OutputFile, key: String, url: String, damage: DamageReport? = nil) {
        self.key = key
        self.url = url
        width = output.width
        height = output.height
        bytes = output.bytes
        mimeType = output.mimeType
        durationMs = output.durationMs
        videoCodec = output.videoCodec
        audioCodec = output.audioCodec
        timeMs = output.timeMs
        blurhash = output.blurhash
        encoder = output.encoder
        self.damage = damage
    }
}

/// An entry of `thumbnails`.
struct ThumbnailRecord: Encodable, Sendable {
    let key: String
    let url: String
    let width: Int
    let height: Int
    let timeMs: Int
    let mimeType: String
    let blurhash: String?

    init(_ still: StillImage, key: String, url: String) {
        self.key = key
        self.url = url
        width = still.width
        height = still.height
        timeMs = still.timeMs
        mimeType = still.mimeType
        blurhash = still.blurhash
    }
}

/// `file_upload.metadata.variants[role]`.
struct VariantRecord: Encodable, Sendable {
    let key: String
    let url: String
    let width: Int
    let height: Int
    let bytes: Int
    let mimeType: String

    /// The fields of an output record the app's upload row keeps.
    init(_ record: OutputRecord) {
        key = record.key
        url = record.url
        width = record.width
        height = record.height
        bytes = record.bytes
        mimeType = record.mimeType
    }
}

/// `file_upload.metadata.video`: the probe summary a chat client needs.
struct VideoSummary: Encodable, Sendable {
    let durationMs: Int?
    let width: Int
    let height: Int
    let rotation: Int
    let codec: String
    let hdr: Bool
    let hasAudio: Bool
    let frameRate: Double?

    init(_ info: MediaInfo) {
        durationMs = info.durationMs
        width = info.video.width
        height = info.video.height
        rotation = info.video.rotation
        codec = info.video.codec
        hdr = info.video.hdr
        hasAudio = info.audio != nil
        frameRate = info.video.frameRate
    }
}
