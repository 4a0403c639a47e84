// The job's words, as the app's schema (the Schema article) spells them. Each is parsed once where it enters (a claimed
// row, a CLI flag, the child's request) and travels on as the enum; SQL text is the only other
// place their raw values appear. Both the media engine and the queue speak them, and neither
// imports the other, so they live here, in a module of their own that imports nothing. Beside
// them, the few conversions every module needs once: JSON's format, `Duration` units, C string arrays.

/// The stages a job asks for (`VideoProcessing.processingType`).
public enum ProcessingType: String, CaseIterable, Codable, Sendable {
    case compression = "COMPRESSION"
    case thumbnail = "THUMBNAIL"
    case metadata = "METADATA"
    case preview = "PREVIEW"
    case fullProcessing = "FULL_PROCESSING"

    /// Whether the type encodes a video (a long pass, run in an encode slot). The others
    /// (THUMBNAIL, METADATA) are quick work, about a second, and the first look of a long type
    /// (probe, stills, reuse) is too.
    public var hasLongPass: Bool {
        switch self {
        case .compression, .preview, .fullProcessing: true
        case .thumbnail, .metadata: false
        }
    }
}

/// Encoding quality (`VideoProcessing.qualityProfile`; a NULL column means MEDIUM).
public enum QualityProfile: String, CaseIterable, Codable, Sendable {
    case low = "LOW"
    case medium = "MEDIUM"
    case high = "HIGH"
    case ultra = "ULTRA"
}

/// Where a job is (`VideoProcessing.status`).
public enum JobStatus: String, CaseIterable, Codable, Sendable {
    case pending = "PENDING"
    case processing = "PROCESSING"
    case completed = "COMPLETED"
    case failed = "FAILED"
    case cancelled = "CANCELLED"
}

/// Where an upload is (`FileUpload.status`); work starts only on COMPLETED.
public enum UploadStatus: String, CaseIterable, Codable, Sendable {
    case pending = "PENDING"
    case uploading = "UPLOADING"
    case completed = "COMPLETED"
    case failed = "FAILED"
}

/// Why a job failed: the `<code>` of `errorMessage`.
public enum FailureCode: String, CaseIterable, Codable, Sendable {
    case inputMissing = "input_missing"
    case inputUnreadable = "input_unreadable"
    case unsupported
    case corruptInput = "corrupt_input"
    case limitsExceeded = "limits_exceeded"
    case storage
    case database
    case crashed
    case timeout
    case cancelled
    case `internal`

    /// Whether the failure may go away on a retry (a host's or a service's fault, not the input's).
    public var isRetryable: Bool {
        switch self {
        case .storage, .database, .crashed, .timeout, .internal: true
        case .inputMissing, .inputUnreadable, .unsupported, .corruptInput, .limitsExceeded, .cancelled: false
        }
    }

    /// A crafted input can cause it at will (a decoder crash, a stall): retried once, in case the
    /// host was to blame, never more.
    public var isRetriedOnce: Bool { self == .crashed || self == .timeout }

    /// Whether a job failing with this code on attempt `attempt` (1 for the first) goes back to
    /// PENDING for another, when `maxAttempts` attempts are allowed in all.
    public func isRetried(afterAttempt attempt: Int, of maxAttempts: Int) -> Bool {
        isRetryable && attempt < (isRetriedOnce ? min(2, maxAttempts) : maxAttempts)
    }
}

/// What a job makes (the keys of `outputStorageKeys`, `outputUrls`, `outputMetadata`).
public enum OutputRole: String, CaseIterable, Codable, CodingKeyRepresentable, Sendable, Comparable {
    /// The compressed MP4: H.264/AAC, playable everywhere.
    case video
    /// The same video in HEVC (tagged `hvc1`), when the upload already is one that fits: a copy,
    /// for clients that play HEVC (every iPhone since 2017, most Android phones).
    case videoHevc = "video_hevc"
    /// The same video in AV1: about 0.7× the bytes of `video` for the same picture, for clients
    /// that decode AV1; a copy when the upload is one, else an SVT-AV1 encode when asked for.
    case videoAv1 = "video_av1"
    /// The short muted loop for the chat bubble.
    case preview
    /// The full-size JPEG still.
    case poster
    /// The small JPEG still.
    case thumbnail
    /// For scrubbing a longer video: one WebP of small frames at a fixed interval…
    case storyboard
    /// …and the WebVTT file whose cues point into it (`storyboard.webp#xywh=x,y,w,h`).
    case storyboardVtt = "storyboard_vtt"

    /// The file it is written to, in a job's output folder and under its storage key.
    public var fileName: String {
        switch self {
        case .video, .videoHevc, .videoAv1, .preview: "\(rawValue).mp4"
        case .poster, .thumbnail: "\(rawValue).jpg"
        case .storyboard: "storyboard.webp"
        case .storyboardVtt: "storyboard.vtt"
        }
    }

    public var mimeType: String {
        switch self {
        case .video, .videoHevc, .videoAv1, .preview: "video/mp4"
        case .poster, .thumbnail: "image/jpeg"
        case .storyboard: "image/webp"
        case .storyboardVtt: "text/vtt"
        }
    }

    /// The storyboard's sprite or its cues (made only for videos of some length).
    public var isStoryboard: Bool { self == .storyboard || self == .storyboardVtt }

    /// A version of the main video in a more efficient codec, for clients that can play it.
    public var isEfficientVariant: Bool { self == .videoHevc || self == .videoAv1 }

    /// A still image (with a time in the video and a BlurHash) rather than a video.
    public var isStill: Bool { self == .poster || self == .thumbnail }

    public static func < (lhs: OutputRole, rhs: OutputRole) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A failure as a job row records it: `errorMessage` is `<code>: <message>`.
public struct JobFailure: Error, Sendable, Equatable, Codable, CustomStringConvertible {
    public var code: FailureCode
    /// What happened and what to do about it.
    public var message: String

    public init(_ code: FailureCode, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The `errorMessage` column's text.
    public var description: String { "\(code.rawValue): \(message)" }
}
