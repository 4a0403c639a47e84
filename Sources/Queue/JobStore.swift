import Foundation
import Logging

/// Every SQL statement media-worker runs against the app's tables. Enum values are literals (so
/// PostgreSQL casts them to the app's enum types, whatever they are named, and the
/// `(status, createdAt)` index stays usable); `json` columns are merged through `jsonb`; every
/// value is a bound parameter. Writes of a running job are fenced by its claim token.
public struct JobStore: Sendable {
    public let tables: TableNames
    /// Channel the app (or `migrate`'s trigger) notifies on insert.
    public static let jobsChannel = "media_worker_jobs"
    /// Channel media-worker notifies when a job ends: `{jobId, fileUploadId, status, processingType}`.
    public static let eventsChannel = "media_worker_events"
    /// Newest `processingLogs` entries kept.
    public static let logCap = 50
    /// Attempts a piece of a long video, or a popular video's variant work, gets before it fails
    /// (a job's own attempts are `MEDIA_WORKER_MAX_ATTEMPTS`).
    public static let backgroundAttempts = 3
    /// Seconds a retried job's place in the queue moves back per retry.
    public static let retryQueuePenalty = 600
    /// Namespace of media-worker's advisory locks (`migrate` takes (namespace, 0) for its transaction).
    static let lockNamespace = 0x6D77

    public init(tables: TableNames = .default) { self.tables = tables }

    var vp: String { tables.videoProcessing }
    static let now = "(now() AT TIME ZONE 'utc')"
    static let clock = "(clock_timestamp() AT TIME ZONE 'utc')"

    /// `processingLogs` with the event in parameter `$n` appended, keeping the newest `logCap`.
    static func appendLog(_ n: Int) -> String { appendLog(expression: "$\(n)::json") }

    /// `processingLogs` with the JSON `expression` appended, keeping the newest `logCap`.
    static func appendLog(expression: String) -> String {
        """
        (SELECT COALESCE(json_agg(kept.entry ORDER BY kept.position), '[]'::json) FROM (
            SELECT entry, position FROM (
                SELECT old.entry, old.position FROM json_array_elements(
                    CASE WHEN json_typeof("processingLogs") = 'array' THEN "processingLogs" ELSE '[]'::json END
                ) WITH ORDINALITY AS old(entry, position)
                UNION ALL SELECT \(expression), 9223372036854775807
            ) AS everything ORDER BY position DESC LIMIT \(logCap)
        ) AS kept)
        """
    }

    /// `value` as JSON text, for `json` and "(JSON)" text columns.
    static func json(_ value: any Encodable) throws -> String { try JSONFormat.text(value) }

    /// `values` as one array parameter (`= ANY($1::text[])`, `unnest($2::bigint[])`): each element
    /// quoted, `"` and `\` escaped, so no value can end the element or the array early.
    static func array(_ values: [String]) -> String {
        let quoted = values.map { "\"\($0.replacing("\\", with: "\\\\").replacing("\"", with: "\\\""))\"" }
        return "{\(quoted.joined(separator: ","))}"
    }

    /// A heartbeat between progress writes (while downloading, uploading, waiting): bumps
    /// `updatedAt` of a run's job. False: the run was fenced off.
    public func heartbeat(_ session: PostgresSession, job: Job) throws -> Bool {
        try session.execute(
            "UPDATE \(vp) SET \"updatedAt\" = \(Self.now) WHERE \(fence(1))", [String(job.id), job.token],
            operation: "send a heartbeat") == 1
    }

    /// Why the job is not worth doing (deleted user, soft-deleted upload), or nil.
    public func pointlessReason(_ session: PostgresSession, job: Job) throws -> String? {
        let row = try session.query(
            """
            SELECT vp."isFromDeletedUser" AS "fromDeletedUser", fu."deletedAt" IS NOT NULL AS "uploadDeleted",
                   u."deletedAt" IS NOT NULL AS "userDeleted"
            FROM \(vp) AS vp
            LEFT JOIN \(tables.fileUpload) AS fu ON fu."id" = vp."fileUploadId"
            LEFT JOIN \(tables.user) AS u ON u."id" = vp."userId"
            WHERE vp."id" = $1
            """, [String(job.id)], operation: "check a job is still wanted"
        ).first
        guard let row else { return "the job row is gone" }
        if try row.require("fromDeletedUser", as: Bool.self) { return "the job belongs to a deleted user" }
        if try row.require("userDeleted", as: Bool.self) { return "the requesting user was deleted" }
        if try row.require("uploadDeleted", as: Bool.self) { return "the upload was deleted" }
        return nil
    }

    /// Whether the job's upload is still not COMPLETED (claimed only because waiting ran out).
    public func uploadIncomplete(_ session: PostgresSession, job: Job) throws -> Bool {
        guard let upload = job.fileUploadId else { return false }
        let status = try session.query(
            "SELECT \"status\"::text AS status FROM \(tables.fileUpload) WHERE \"id\" = $1", [String(upload)],
            operation: "read the upload's status"
        ).first?.decode("status", as: String.self)
        return status != nil && status != UploadStatus.completed.rawValue
    }

    // MARK: Writes of a running job (fenced)

    /// SQL: the run whose job id and token are `$first` and `$first + 1` still holds the job.
    func held(_ first: Int) -> String {
        "\"id\" = $\(first) AND \"status\" = 'PROCESSING' AND \"startedAt\" = $\(first + 1)::timestamp"
    }

    /// SQL: the run holds the job and the job is still wanted (neither its upload nor its user
    /// was deleted meanwhile). Every write of a run is fenced by this, so a run of an upload
    /// deleted mid-way writes nothing more; only the cancel that ends it (`cancel`) needs `held`
    /// alone.
    func fence(_ first: Int) -> String { "\(held(first)) AND \(wanted(vp))" }

    /// SQL: the job row `row` (a table name or alias) is still wanted: not from a deleted user,
    /// its upload and its user not deleted.
    func wanted(_ row: String) -> String {
        """
        NOT \(row)."isFromDeletedUser"
            AND NOT EXISTS (SELECT 1 FROM \(tables.fileUpload) AS fu
                WHERE fu."id" = \(row)."fileUploadId" AND fu."deletedAt" IS NOT NULL)
            AND NOT EXISTS (SELECT 1 FROM \(tables.user) AS u WHERE u."id" = \(row)."userId" AND u."deletedAt" IS NOT NULL)
        """
    }

    /// Where a run stands with its job, after a fenced write was refused.
    public enum ClaimState: Sendable, Equatable {
        /// The run holds the job and the job is wanted.
        case held
        /// The run holds the job, but the job is not worth finishing (why): it is to be cancelled.
        case unwanted(String)
        /// The app cancelled the job.
        case cancelled
        /// Someone else owns the job (rescued, reprocessed), or the row is gone.
        case lost(JobStatus?)
    }

    /// Where `job`'s run stands now.
    public func claimState(_ session: PostgresSession, job: Job) throws -> ClaimState {
        try session.transaction("read where the run stands") {
            let row = try session.query(
                "SELECT \"status\"::text AS status, \(held(1)) AS held FROM \(vp) WHERE \"id\" = $1",
                [String(job.id), job.token], operation: "read where the run stands"
            ).first
            guard let row else { return .lost(nil) }
            let status: JobStatus = try row.requireVocabulary("status")
            guard try row.require("held", as: Bool.self) else {
                return status == .cancelled ? .cancelled : .lost(status)
            }
            return try pointlessReason(session, job: job).map(ClaimState.unwanted) ?? .held
        }
    }

    /// Writes progress (and so the heartbeat). False: the run was fenced off (rescued, cancelled,
    /// reprocessed) and must stop.
    /// With `announce`, also tells the app (`media_worker_events`, `{"status": "PROCESSING",
    /// "progress": N, "etaSeconds": S}`), for a progress ring and a time left without polling.
    /// `estimatedSeconds` is the whole run's expected duration (`estimatedDurationSeconds`),
    /// `secondsLeft` what is left of it.
    public func writeProgress(
        _ session: PostgresSession, job: Job, progress: Int, estimatedSeconds: Int?, secondsLeft: Int? = nil,
        announce: Bool = false
    ) throws -> Bool {
        let percent = max(0, min(99, progress))
        let write = {
            try session.execute(
                """
                UPDATE \(vp) SET "progress" = $3, "updatedAt" = \(Self.now),
                    "estimatedDurationSeconds" = COALESCE($4::int, "estimatedDurationSeconds")
                WHERE \(fence(1))
                """, [String(job.id), job.token, String(percent), estimatedSeconds.map(String.init)],
                operation: "write progress") == 1
        }
        guard announce else { return try write() }
        return try session.transaction("write and announce progress") {
            let alive = try write()
            if alive { try notify(session, job: job, status: .processing, progress: percent, eta: secondsLeft) }
            return alive
        }
    }

    /// The job's status now (e.g. to tell a cancel from a rescue after a fenced write).
    public func status(_ session: PostgresSession, jobId: Int) throws -> JobStatus? {
        try session.query(
            "SELECT \"status\"::text AS status FROM \(vp) WHERE \"id\" = $1", [String(jobId)],
            operation: "read a job's status"
        ).first?.requireVocabulary("status")
    }

    /// What a finished run writes, all at once, and what it keeps for reuse, of the worker's type.
    public struct Completion<Kept: Codable & Sendable>: Sendable {
        public var columns: OutputColumns
        public var outputTotalSize: Int64
        public var actualDurationSeconds: Int
        /// Written if the run did not get to write it earlier.
        public var estimatedDurationSeconds: Int?
        public var event: ProcessingLogEvent
        /// Kept in the outputs table for later jobs with the same bytes (nil: nothing to keep).
        public var reusable: ReusableResult<Kept>?
        /// When the outputs are another job's (a reuse): that result, which must still stand
        /// (COMPLETED as it was, its upload not deleted) when this completion is recorded.
        public var reusedFrom: FoundResult<Kept>?

        public init(
            columns: OutputColumns, outputTotalSize: Int64, actualDurationSeconds: Int, estimatedDurationSeconds: Int?,
            event: ProcessingLogEvent, reusable: ReusableResult<Kept>?, reusedFrom: FoundResult<Kept>? = nil
        ) {
            self.columns = columns
            self.outputTotalSize = outputTotalSize
            self.actualDurationSeconds = actualDurationSeconds
            self.estimatedDurationSeconds = estimatedDurationSeconds
            self.event = event
            self.reusable = reusable
            self.reusedFrom = reusedFrom
        }
    }

    /// Merges into the upload row (keeping every key the app stored): `thumbnailUrl`, and in
    /// `metadata` the probe summary, role → variant, and where processing is.
    func writeUpload(
        _ session: PostgresSession, job: Job, status: JobStatus, posterUrl: String?, video: any Encodable,
        variants: any Encodable
    ) throws {
        guard let upload = job.fileUploadId else { return }
        try session.execute(
            """
            UPDATE \(tables.fileUpload) SET "thumbnailUrl" = COALESCE($2, "thumbnailUrl"),
                "metadata" = (COALESCE("metadata"::jsonb, '{}'::jsonb) || jsonb_build_object(
                    'video', $3::jsonb,
                    'variants', COALESCE("metadata"::jsonb -> 'variants', '{}'::jsonb) || $4::jsonb,
                    'processing', jsonb_build_object('jobId', $5::int, 'status', $6::text,
                                                     'at', to_char(\(Self.now), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                ))::json,
                "updatedAt" = \(Self.now)
            WHERE "id" = $1
            """,
            [
                String(upload), posterUrl, try Self.json(video), try Self.json(variants), String(job.id),
                status.rawValue,
            ],
            operation: "write the results to the upload")
    }

    /// What became of a completion.
    public enum CompletionOutcome: Sendable, Equatable {
        case recorded
        /// Nothing written: the run lost its claim, or the job is no longer wanted.
        case fencedOff
        /// Nothing written: the result it reused was replaced, erased or deleted meanwhile.
        case sourceGone
    }

    /// Writes every output column, merges into the upload, and notifies, in ONE transaction.
    /// A reuse first checks, under a share lock on the source row, that the result it points at
    /// still stands: a source being replaced or erased waits for this transaction, so a sweep
    /// that sees the source's objects unreferenced sees this job's references too.
    public func complete<Kept>(_ session: PostgresSession, job: Job, _ completion: Completion<Kept>) throws
        -> CompletionOutcome
    {
        let columns = completion.columns
        return try session.transaction("record a finished job") {
            if let source = completion.reusedFrom, try !resultStands(session, source) { return .sourceGone }
            let changed = try session.execute(
                """
                UPDATE \(vp) SET "status" = 'COMPLETED', "outputStorageKeys" = $3, "outputUrls" = $4,
                    "outputTotalSize" = $5, "outputMetadata" = $6::json, "inputMetadata" = $7::json,
                    "thumbnails" = $8::json, "progress" = 100, "completedAt" = \(Self.now),
                    "actualDurationSeconds" = $9, "errorMessage" = NULL, "updatedAt" = \(Self.now),
                    "processingLogs" = \(Self.appendLog(10)),
                    "estimatedDurationSeconds" = COALESCE("estimatedDurationSeconds", $11::int)
                WHERE \(fence(1))
                """,
                [
                    String(job.id), job.token, try Self.json(columns.outputStorageKeys),
                    try Self.json(columns.outputUrls),
                    String(completion.outputTotalSize), try Self.json(columns.outputMetadata),
                    try Self.json(columns.inputMetadata), try Self.json(columns.thumbnails),
                    String(completion.actualDurationSeconds), try Self.json(completion.event),
                    completion.estimatedDurationSeconds.map(String.init),
                ], operation: "record a finished job")
            guard changed == 1 else { return .fencedOff }
            try writeUpload(
                session, job: job, status: .completed, posterUrl: columns.posterUrl, video: columns.uploadVideo,
                variants: columns.uploadVariants)
            if let reusable = completion.reusable { try keepForReuse(session, reusable, job: job) }
            try notify(session, job: job, status: .completed)
            return .recorded
        }
    }

    /// What happened to a failed run.
    public enum FailureOutcome: Sendable {
        /// Back to PENDING for another attempt.
        case retrying
        case failed
        case fencedOff
    }

    /// Records a failure: with `retry` (see `FailureCode.isRetried`) the job goes back to PENDING
    /// with `retryCount` + 1, otherwise it ends FAILED.
    public func fail(
        _ session: PostgresSession, job: Job, errorMessage: String, retry: Bool, event: ProcessingLogEvent
    ) throws -> FailureOutcome {
        try session.transaction("record a failed job") {
            let changed = try session.execute(
                """
                UPDATE \(vp) SET "status" = \(retry ? "'PENDING'" : "'FAILED'"), "errorMessage" = $3,
                    "retryCount" = "retryCount" + \(retry ? 1 : 0), "updatedAt" = \(Self.now),
                    "completedAt" = \(retry ? "NULL" : Self.now), "processingLogs" = \(Self.appendLog(4))
                WHERE \(fence(1))
                """, [String(job.id), job.token, errorMessage, try Self.json(event)], operation: "record a failed job")
            guard changed == 1 else { return .fencedOff }
            try writeProcessingStatus(session, job: job, status: retry ? .pending : .failed)
            if !retry { try notify(session, job: job, status: .failed) }
            return retry ? .retrying : .failed
        }
    }

    /// Ends a job that is not worth doing as CANCELLED.
    public func cancel(_ session: PostgresSession, job: Job, errorMessage: String, event: ProcessingLogEvent) throws
        -> Bool
    {
        try session.transaction("cancel a job") {
            let changed = try session.execute(
                """
                UPDATE \(vp) SET "status" = 'CANCELLED', "errorMessage" = $3, "updatedAt" = \(Self.now),
                    "completedAt" = \(Self.now), "processingLogs" = \(Self.appendLog(4))
                WHERE \(held(1))
                """, [String(job.id), job.token, errorMessage, try Self.json(event)], operation: "cancel a job")
            guard changed == 1 else { return false }
            try writeProcessingStatus(session, job: job, status: .cancelled)
            try notify(session, job: job, status: .cancelled)
            return true
        }
    }

    /// Puts a job back to PENDING without counting an attempt (shutdown, upload not ready yet).
    public func release(_ session: PostgresSession, job: Job, event: ProcessingLogEvent) throws -> Bool {
        try session.transaction("release a job") {
            guard
                try session.execute(
                    """
                    UPDATE \(vp) SET "status" = 'PENDING', "progress" = 0, "updatedAt" = \(Self.now),
                        "processingLogs" = \(Self.appendLog(3))
                    WHERE \(fence(1))
                    """, [String(job.id), job.token, try Self.json(event)], operation: "release a job") == 1
            else { return false }
            try writeProcessingStatus(session, job: job, status: .pending)
            return true
        }
    }

    /// Sets `file_upload.metadata.processing.status` of the job's upload to `status`, where it
    /// names this job (an upload's newer job keeps its own): a cancel, a failure or a retry is
    /// seen there as well as a completion.
    public func writeProcessingStatus(_ session: PostgresSession, job: Job, status: JobStatus) throws {
        guard let upload = job.fileUploadId else { return }
        try writeProcessingStatus(session, jobId: job.id, fileUploadId: upload, status: status)
    }

    func writeProcessingStatus(_ session: PostgresSession, jobId: Int, fileUploadId: Int, status: JobStatus) throws {
        try session.execute(
            """
            UPDATE \(tables.fileUpload) SET "metadata" = jsonb_set("metadata"::jsonb, '{processing}',
                    jsonb_build_object('jobId', $2::int, 'status', $3::text,
                                       'at', to_char(\(Self.now), 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))::json,
                "updatedAt" = \(Self.now)
            WHERE "id" = $1 AND "metadata"::jsonb -> 'processing' ->> 'jobId' = $2::text
            """, [String(fileUploadId), String(jobId), status.rawValue],
            operation: "write the upload's processing status")
    }

    /// `pg_notify('media_worker_events', {jobId, fileUploadId, status, processingType[, stage][, progress]})`.
    func notify(
        _ session: PostgresSession, job: Job, status: JobStatus, stage: String? = nil, progress: Int? = nil,
        eta: Int? = nil
    ) throws {
        try notify(
            session, jobId: job.id, fileUploadId: job.fileUploadId, status: status,
            processingType: job.processingType.rawValue, stage: stage, progress: progress, eta: eta)
    }

    func notify(
        _ session: PostgresSession, jobId: Int, fileUploadId: Int?, status: JobStatus, processingType: String,
        stage: String? = nil, progress: Int? = nil, eta: Int? = nil
    ) throws {
        struct Event: Encodable {
            let jobId: Int
            let fileUploadId: Int?
            let status: JobStatus
            let processingType: String
            let stage: String?
            let progress: Int?
            let etaSeconds: Int?
        }
        try session.execute(
            "SELECT pg_notify($1, $2)",
            [
                Self.eventsChannel,
                try Self.json(
                    Event(
                        jobId: jobId, fileUploadId: fileUploadId, status: status, processingType: processingType,
                        stage: stage, progress: progress, etaSeconds: eta)),
            ], operation: "announce a job's news")
    }
}
