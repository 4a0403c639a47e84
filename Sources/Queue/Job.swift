import Foundation
@_exported public import JobVocabulary

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

    /// This run's attempt number (1 for the first).
    public var attempt: Int { retryCount + 1 }

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
