import Foundation
@_exported public import JobVocabulary

/// One claim of a job: its id and the `startedAt` the claim wrote (the fencing token).
public struct JobClaim: Sendable, Hashable {
    public let id: Int
    public let token: String
}

/// A claimed `VideoProcessing` row, with the claim's fencing token.
public struct Job: Sendable, Equatable {
    public let id: Int
    public let userId: Int?
    public let fileUploadId: Int?
    public let processingType: ProcessingType
    /// MEDIUM when the column is NULL.
    public let qualityProfile: QualityProfile
    public let inputStorageKey: String
    public let originalFileName: String
    public let inputMimeType: String
    public let inputFileSize: Int64
    public let retryCount: Int
    /// The `startedAt` this claim wrote: every later write of the run must match it.
    public let token: String
    /// The SHA-256 of the bytes an earlier run's first look saw (its `inputMetadata.sha256`); nil
    /// when no first look was done yet.
    public let firstLookSha256: String?
    /// Whether operators paused this job's type (its first look runs, its long pass waits).
    public let typePaused: Bool
    /// `outputMetadata` as the row holds it: the stills a first look published.
    private let published: String?

    /// This run's attempt number (1 for the first).
    public var attempt: Int { retryCount + 1 }

    /// The claim this run holds.
    public var claim: JobClaim { JobClaim(id: id, token: token) }

    init(_ row: PostgresRow) throws {
        id = try row.require("id")
        userId = try row.decode("userId")
        fileUploadId = try row.decode("fileUploadId")
        processingType = try row.requireVocabulary("processingType")
        qualityProfile =
            try row.decode("qualityProfile", as: String.self) == nil ? .medium : row.requireVocabulary("qualityProfile")
        inputStorageKey = try row.require("inputStorageKey")
        originalFileName = try row.require("originalFileName")
        inputMimeType = try row.require("inputMimeType")
        inputFileSize = try row.require("inputFileSize")
        retryCount = try row.require("retryCount")
        token = try row.require("startedAt")
        firstLookSha256 = try row.decode("firstLookSha256")
        typePaused = try row.decode("paused") ?? false
        published = try row.decode("published")
    }

    /// The outputs published so far (`outputMetadata`, role → entry), each decoded as `Entry`;
    /// entries that do not decode are left out (they are made again).
    public func publishedOutputs<Entry: Decodable>(as _: Entry.Type) -> [String: Entry] {
        guard let published,
            let entries = try? JSONDecoder().decode([String: FailableEntry<Entry>].self, from: Data(published.utf8))
        else { return [:] }
        return entries.compactMapValues(\.value)
    }
}

/// One entry of `processingLogs`.
public struct ProcessingLogEvent: Sendable, Encodable {

    public var at: String
    public var event: String
    public var attempt: Int
    public var host: String
    public var pid: Int32
    public var stage: String?
    public var message: String?

    /// Now, as `processingLogs` writes it (ISO 8601, UTC, milliseconds).
    public static func timestamp() -> String {
        Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    public init(event: String, attempt: Int, host: String, pid: Int32, stage: String? = nil, message: String? = nil) {
        self.at = Self.timestamp()
        self.event = event
        self.attempt = attempt
        self.host = host
        self.pid = pid
        self.stage = stage
        self.message = message
    }
}

/// A value that is nil when it does not decode, instead of failing the whole container.
private struct FailableEntry<Value: Decodable>: Decodable {
    let value: Value?
    init(from decoder: any Decoder) throws { value = try? Value(from: decoder) }
}

/// A claimed row media-worker cannot run: a value its vocabulary lacks (an app that added a
/// processing type or profile before media-worker learned it).
enum JobRowError: Error, Sendable, CustomStringConvertible {
    case unknownValue(column: String, value: String)

    var description: String {
        switch self {
        case .unknownValue(let column, let value):
            "\(column) \(value.debugDescription) is not one this version of media-worker knows; upgrade media-worker "
                + "or change the job"
        }
    }
}

extension PostgresRow {
    /// A text column parsed as one of the job's words.
    func requireVocabulary<Value: RawRepresentable>(_ column: String) throws -> Value where Value.RawValue == String {
        let raw: String = try require(column)
        guard let value = Value(rawValue: raw) else { throw JobRowError.unknownValue(column: column, value: raw) }
        return value
    }
}
