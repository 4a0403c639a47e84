import Media
import Queue

/// An output once uploaded: the file the child made, wrapped once with where it is stored. The
/// three JSON shapes the app's schema asks for (the Schema article) are encodings of it, each a list of its fields.
struct StoredOutput: Sendable {
    let file: OutputFile
    let key: String
    let url: String
    /// The SHA-256 of the stored bytes (nil for stills published by a version that did not say).
    let sha256: String?
    /// On the `video` output of a damaged but playable input: the packets skipped.
    let damage: DamageReport?
    /// When the output is a copy of another job's (the same bytes): that job's id.
    var reusedFrom: Int? = nil

    /// `outputMetadata[role]`: everything.
    var metadata: Encoding { Encoding(output: self, fields: Field.allCases) }
    /// An entry of `thumbnails`.
    var thumbnail: Encoding {
        Encoding(output: self, fields: [.key, .url, .width, .height, .timeMs, .mimeType, .blurhash])
    }
    /// `file_upload.metadata.variants[role]`: what the app's upload row keeps.
    var variant: Encoding { Encoding(output: self, fields: [.key, .url, .width, .height, .bytes, .mimeType, .sha256]) }

    enum Field: String, CodingKey, CaseIterable {
        case key, url, width, height, bytes, sha256, mimeType, durationMs, videoCodec, audioCodec, timeMs, blurhash
        case encoder, damage, reusedFrom
    }

    /// The output as JSON with `fields` only (absent values left out).
    struct Encoding: Encodable, Sendable {
        let output: StoredOutput
        let fields: [Field]

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Field.self)
            let file = output.file
            for field in fields {
                switch field {
                case .key: try container.encode(output.key, forKey: field)
                case .url: try container.encode(output.url, forKey: field)
                case .width: try container.encode(file.width, forKey: field)
                case .height: try container.encode(file.height, forKey: field)
                case .bytes: try container.encode(file.bytes, forKey: field)
                case .sha256: try container.encodeIfPresent(output.sha256, forKey: field)
                case .mimeType: try container.encode(file.mimeType, forKey: field)
                case .durationMs: try container.encodeIfPresent(file.durationMs, forKey: field)
                case .videoCodec: try container.encodeIfPresent(file.videoCodec, forKey: field)
                case .audioCodec: try container.encodeIfPresent(file.audioCodec, forKey: field)
                case .timeMs: try container.encodeIfPresent(file.timeMs, forKey: field)
                case .blurhash: try container.encodeIfPresent(file.blurhash, forKey: field)
                case .encoder: try container.encodeIfPresent(file.encoder, forKey: field)
                case .damage: try container.encodeIfPresent(output.damage, forKey: field)
                case .reusedFrom: try container.encodeIfPresent(output.reusedFrom, forKey: field)
                }
            }
        }
    }
}

extension JobStore.OutputColumns {
    /// The columns `stored` (in role order) fill, for an input like `input` with these bytes.
    init(_ stored: [StoredOutput], input: MediaInfo, sha256: String) {
        let byRole = Dictionary(uniqueKeysWithValues: stored.map { ($0.file.role.rawValue, $0) })
        self.init(
            outputStorageKeys: byRole.mapValues(\.key), outputUrls: byRole.mapValues(\.url),
            outputMetadata: byRole.mapValues(\.metadata),
            thumbnails: stored.filter(\.file.role.isStill).map(\.thumbnail),
            inputMetadata: InputRecord(info: input, sha256: sha256),
            uploadVideo: VideoSummary(input, blurhash: byRole[OutputRole.poster.rawValue]?.file.blurhash),
            uploadVariants: byRole.mapValues(\.variant), posterUrl: byRole[OutputRole.poster.rawValue]?.url)
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
    /// The poster as a BlurHash, for the bubble before any image loads.
    let blurhash: String?

    init(_ info: MediaInfo, blurhash: String?) {
        durationMs = info.durationMs
        width = info.video.width
        height = info.video.height
        rotation = info.video.rotation
        codec = info.video.codec
        hdr = info.video.hdr
        hasAudio = info.audio != nil
        frameRate = info.video.frameRate
        self.blurhash = blurhash
    }
}

extension StoredOutput {
    /// An `outputMetadata` entry as the job row holds it (`metadata`'s encoding), read back: the
    /// stills a first look published, for the long pass's final write.
    struct Published: Decodable, Sendable {
        let key: String
        let url: String
        let width: Int
        let height: Int
        let bytes: Int
        let sha256: String?
        let mimeType: String
        let durationMs: Int?
        let videoCodec: String?
        let audioCodec: String?
        let timeMs: Int?
        let blurhash: String?
        let encoder: EncoderReport?
    }

    init(role: OutputRole, published entry: Published) {
        self.init(
            file: OutputFile(
                role: role, width: entry.width, height: entry.height, bytes: entry.bytes, mimeType: entry.mimeType,
                durationMs: entry.durationMs, videoCodec: entry.videoCodec, audioCodec: entry.audioCodec,
                encoder: entry.encoder, timeMs: entry.timeMs, blurhash: entry.blurhash),
            key: entry.key, url: entry.url, sha256: entry.sha256, damage: nil)
    }
}

extension Job {
    /// The stills an earlier first look of this job published, by role.
    var publishedStills: [OutputRole: StoredOutput] {
        var stills: [OutputRole: StoredOutput] = [:]
        for (name, entry) in publishedOutputs(as: StoredOutput.Published.self) {
            guard let role = OutputRole(rawValue: name), role.isStill else { continue }
            stills[role] = StoredOutput(role: role, published: entry)
        }
        return stills
    }
}
