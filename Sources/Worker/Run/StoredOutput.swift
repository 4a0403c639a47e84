import Media
import Queue

/// An output once uploaded: the file the child made, wrapped once with where it is stored. The
/// three JSON shapes the app's schema asks for (the Schema article) are encodings of it, each a list of its fields.
struct StoredOutput: Sendable, Equatable {
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
            uploadVideo: VideoSummary(info: input, blurhash: byRole[OutputRole.poster.rawValue]?.file.blurhash),
            uploadVariants: byRole.mapValues(\.variant), posterUrl: byRole[OutputRole.poster.rawValue]?.url)
    }
}

/// `file_upload.metadata.video`: the part of the probe a chat client needs, and the poster as a
/// BlurHash for the bubble before any image loads.
struct VideoSummary: Encodable, Sendable {
    let info: MediaInfo
    let blurhash: String?

    private enum Key: CodingKey { case durationMs, width, height, rotation, codec, hdr, hasAudio, frameRate, blurhash }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encodeIfPresent(info.durationMs, forKey: .durationMs)
        try container.encode(info.video.width, forKey: .width)
        try container.encode(info.video.height, forKey: .height)
        try container.encode(info.video.rotation, forKey: .rotation)
        try container.encode(info.video.codec, forKey: .codec)
        try container.encode(info.video.hdr, forKey: .hdr)
        try container.encode(info.audio != nil, forKey: .hasAudio)
        try container.encodeIfPresent(info.video.frameRate, forKey: .frameRate)
        try container.encodeIfPresent(blurhash, forKey: .blurhash)
    }
}

extension StoredOutput: Decodable {
    /// An `outputMetadata` entry read back (`metadata`'s encoding). Its role is not a field but
    /// its key in `outputMetadata`, the last of the decoder's coding path.
    init(from decoder: any Decoder) throws {
        guard let name = decoder.codingPath.last?.stringValue, let role = OutputRole(rawValue: name) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "an output is read back under its role"))
        }
        let fields = try decoder.container(keyedBy: Field.self)
        func required<T: Decodable>(_ field: Field) throws -> T { try fields.decode(T.self, forKey: field) }
        func optional<T: Decodable>(_ field: Field) throws -> T? { try fields.decodeIfPresent(T.self, forKey: field) }
        self.init(
            file: OutputFile(
                role: role, width: try required(.width), height: try required(.height), bytes: try required(.bytes),
                mimeType: try required(.mimeType), durationMs: try optional(.durationMs),
                videoCodec: try optional(.videoCodec), audioCodec: try optional(.audioCodec),
                encoder: try optional(.encoder), timeMs: try optional(.timeMs), blurhash: try optional(.blurhash)),
            key: try required(.key), url: try required(.url), sha256: try optional(.sha256),
            damage: try optional(.damage), reusedFrom: try optional(.reusedFrom))
    }
}

extension Job {
    /// The stills an earlier first look of this job published, by role.
    var publishedStills: [OutputRole: StoredOutput] {
        var stills: [OutputRole: StoredOutput] = [:]
        for output in publishedOutputs(as: StoredOutput.self).values where output.file.role.isStill {
            stills[output.file.role] = output
        }
        return stills
    }
}
