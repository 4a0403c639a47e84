/// What METADATA reports about an input: read from container headers, never a full decode.
/// Encoded field names are what the daemon stores in `inputMetadata`; absent values are `null`.
public struct MediaInfo: Codable, Sendable, Equatable {
    /// Short container name: `mp4`, `mov`, `webm`, `matroska`, `avi`, …
    public var container: String
    public var durationMs: Int?
    public var sizeBytes: Int64
    /// Overall bits per second.
    public var bitRate: Int64?
    public var video: VideoInfo
    public var audio: AudioInfo?
    /// ISO 8601, as the file's `creation_time` tag gives it.
    public var creationTime: String?
    /// ISO 6709 (e.g. `+35.6586+139.7454/`), as phones record it.
    public var location: String?

    public func encode(to encoder: any Encoder) throws { try encodeEveryField(of: self, to: encoder) }
}

/// The main video stream.
public struct VideoInfo: Codable, Sendable, Equatable {
    public var codec: String
    public var profile: String?
    /// The stored frame size, before rotation.
    public var codedWidth: Int
    public var codedHeight: Int
    /// Clockwise degrees (0, 90, 180, 270) a player turns the stored frame to show it upright.
    public var rotation: Int
    /// The displayed size: after rotation and non-square pixels.
    public var width: Int
    public var height: Int
    /// The pixel aspect ratio ("num:den") when the file declares non-square pixels, else nil.
    /// Ratios beyond 1:8…8:1 are reported but shown as square.
    public var pixelAspectRatio: String?
    /// Average frames per second.
    public var frameRate: Double?
    public var variableFrameRate: Bool
    public var pixelFormat: String?
    public var bitDepth: Int?
    public var colorPrimaries: String?
    public var colorTransfer: String?
    public var colorSpace: String?
    /// `tv` (limited) or `pc` (full).
    public var colorRange: String?
    /// PQ (SMPTE 2084) or HLG (ARIB STD-B67) transfer.
    public var hdr: Bool
    public var bitRate: Int64?
    /// Shown mirrored left to right (after the rotation), as the display matrix asks.
    public var mirrored = false
    /// The display matrix is exactly a quarter-turn rotation (or none), possibly mirrored. False
    /// for other angles, skew, scaling or a singular matrix: the outputs show the nearest upright
    /// orientation, and the stream is never copied with such a matrix.
    public var orientationExact = true
    /// The container's edit list cuts, repeats or retimes the video: it is re-encoded, never copied.
    public var edited = false
    /// The picture is coded as fields (`field_order`): it is re-encoded, never copied.
    public var interlaced = false

    public func encode(to encoder: any Encoder) throws { try encodeEveryField(of: self, to: encoder) }
}

/// The main audio stream.
public struct AudioInfo: Codable, Sendable, Equatable {
    public var codec: String
    public var channels: Int
    public var sampleRate: Int
    public var bitRate: Int64?

    public func encode(to encoder: any Encoder) throws { try encodeEveryField(of: self, to: encoder) }
}

/// Encodes each stored property of `value` under its own name, an absent one as `null` (where
/// synthesized encoding leaves it out), so a property added later is in the JSON too.
private func encodeEveryField(of value: any Encodable, to encoder: any Encoder) throws {
    struct Name: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
    var container = encoder.container(keyedBy: Name.self)
    for case let (name?, field) in Mirror(reflecting: value).children {
        guard let field = field as? any Encodable else {
            throw EncodingError.invalidValue(
                field, .init(codingPath: container.codingPath, debugDescription: "\(name) is not encodable"))
        }
        try container.encode(field, forKey: Name(stringValue: name))
    }
}
