import Foundation

/// Results written while a job runs (the stills, first) and results kept for reuse: a clip
/// forwarded to ten chat rooms is ten uploads of the same bytes, processed once.
extension JobStore {
    /// What a set of stored outputs writes to the job's and the upload's columns: the stills'
    /// early write and the final write alike.
    public struct OutputColumns: Sendable {
        /// Role → storage key and role → URL.
        public var outputStorageKeys: [String: String]
        public var outputUrls: [String: String]
        /// Role → `outputMetadata` entry.
        public var outputMetadata: any Encodable & Sendable
        public var thumbnails: any Encodable & Sendable
        public var inputMetadata: any Encodable & Sendable
        /// Merged into `file_upload.metadata`: the probe summary and role → variant.
        public var uploadVideo: any Encodable & Sendable
        public var uploadVariants: any Encodable & Sendable
        public var posterUrl: String?

        public init(
            outputStorageKeys: [String: String], outputUrls: [String: String], outputMetadata: any Encodable & Sendable,
            thumbnails: any Encodable & Sendable, inputMetadata: any Encodable & Sendable,
            uploadVideo: any Encodable & Sendable, uploadVariants: any Encodable & Sendable, posterUrl: String?
        ) {
            self.outputStorageKeys = outputStorageKeys
            self.outputUrls = outputUrls
            self.outputMetadata = outputMetadata
            self.thumbnails = thumbnails
            self.inputMetadata = inputMetadata
            self.uploadVideo = uploadVideo
            self.uploadVariants = uploadVariants
            self.posterUrl = posterUrl
        }
    }

    /// Publishes a running job's stills in ONE fenced transaction: the job's `thumbnails`,
    /// `inputMetadata` and the stills' entries of the output columns, the upload's `thumbnailUrl`
    /// and `metadata.video`, then `{"status": "PROCESSING", "stage": "stills"}` on the events
    /// channel. The stills' keys, URLs and metadata are merged into the job's (the final write
    /// keeps them). False (and nothing written) when the run was fenced off.
    public func publishStills(
        _ session: PostgresSession, job: Job, _ stills: OutputColumns, event: ProcessingLogEvent
    ) throws -> Bool {
        try publishFirstLook(session, job: job, stills, event: event, status: .processing)
    }

    /// Ends a first look (a fast-lane run of a job with a long pass) in ONE fenced transaction:
    /// publishes what it found as `publishStills` does (the stills, if it made any, and the probe),
    /// and puts the job back to PENDING, progress 0, without counting an attempt, for an encode
    /// slot to make the rest; the events channel hears `{"status": "PENDING", "stage": "stills"}`
    /// (or `"probed"` when there are no stills). False (and nothing written) when fenced off.
    public func park(
        _ session: PostgresSession, job: Job, _ found: OutputColumns, estimatedSeconds: Int?,
        event: ProcessingLogEvent
    ) throws -> Bool {
        try publishFirstLook(
            session, job: job, found, event: event, status: .pending, estimatedSeconds: estimatedSeconds)
    }

    private func publishFirstLook(
        _ session: PostgresSession, job: Job, _ found: OutputColumns, event: ProcessingLogEvent, status: JobStatus,
        estimatedSeconds: Int? = nil
    ) throws -> Bool {
        let parking = status == .pending
        return try session.transaction("publish the first look") {
            let changed = try session.execute(
                """
                UPDATE \(tables.videoProcessing) SET
                    "outputStorageKeys" = (COALESCE(NULLIF("outputStorageKeys", '')::jsonb, '{}') || $3::jsonb)::text,
                    "outputUrls" = (COALESCE(NULLIF("outputUrls", '')::jsonb, '{}') || $4::jsonb)::text,
                    "outputMetadata" = (COALESCE("outputMetadata"::jsonb, '{}') || $5::jsonb)::json,
                    "thumbnails" = CASE WHEN json_array_length($6::json) > 0 THEN $6::json ELSE "thumbnails" END,
                    "inputMetadata" = $7::json, "updatedAt" = \(Self.now),
                    "processingLogs" = \(Self.appendLog(8)),
                    "estimatedDurationSeconds" = COALESCE($9::int, "estimatedDurationSeconds")
                    \(parking ? #", "status" = 'PENDING', "progress" = 0"# : "")
                WHERE \(fence(1))
                """,
                [
                    String(job.id), job.token, try Self.json(found.outputStorageKeys),
                    try Self.json(found.outputUrls),
                    try Self.json(found.outputMetadata), try Self.json(found.thumbnails),
                    try Self.json(found.inputMetadata), try Self.json(event), estimatedSeconds.map(String.init),
                ], operation: "publish the first look")
            guard changed == 1 else { return false }
            try writeUpload(
                session, job: job, status: status, posterUrl: found.posterUrl, video: found.uploadVideo,
                variants: found.uploadVariants)
            try notify(
                session, job: job, status: status, stage: found.posterUrl == nil ? "probed" : "stills")
            return true
        }
    }

    // MARK: Reuse

    /// What identifies work that can be reused: the same bytes, asked for the same way, by the
    /// same pipeline (bumped whenever encoder settings or stages change).
    public struct ReuseKey: Sendable, Equatable {
        public var sha256: String
        public var processingType: ProcessingType
        public var qualityProfile: QualityProfile
        public var pipelineVersion: Int

        public init(
            sha256: String, processingType: ProcessingType, qualityProfile: QualityProfile, pipelineVersion: Int
        ) {
            self.sha256 = sha256
            self.processingType = processingType
            self.qualityProfile = qualityProfile
            self.pipelineVersion = pipelineVersion
        }

        /// A 64-bit number from the hash, for the advisory lock of whoever makes this result.
        public var lockKey: String { String(Int64(bitPattern: UInt64(sha256.prefix(16), radix: 16) ?? 0)) }

        var parameters: [PostgresValue] {
            [sha256, processingType.rawValue, qualityProfile.rawValue, String(pipelineVersion)]
        }
    }

    /// A completed job's result, kept under its key: whatever the worker needs to repeat the
    /// write-back (outputs and their keys, the probe), of the worker's own type.
    public struct ReusableResult<Kept: Codable & Sendable>: Sendable {
        public var key: ReuseKey
        public var result: Kept

        public init(key: ReuseKey, result: Kept) {
            self.key = key
            self.result = result
        }
    }

    /// A result found for reuse: the job that made it, when it completed, and what it kept.
    public struct FoundResult<Kept: Codable & Sendable>: Sendable {
        public var jobId: Int
        public var completedAt: String
        public var result: Kept
    }

    /// The result kept under `key`, as `Kept`, if the job that made it is still COMPLETED as it was
    /// then and still wanted (a job reprocessed since, failed, deleted, or whose upload or user was
    /// deleted, is not served). One kept in another shape (by another version) is none.
    public func reusableResult<Kept: Codable & Sendable>(
        _ session: PostgresSession, key: ReuseKey, as _: Kept.Type
    ) throws -> FoundResult<Kept>? {
        guard
            let row = try session.query(
                """
                SELECT o."jobId", o."completedAt"::text AS "completedAt", o."result"::text AS result
                FROM \(tables.outputs) AS o
                JOIN \(tables.videoProcessing) AS vp ON vp."id" = o."jobId"
                WHERE o."sha256" = $1 AND o."processingType" = $2 AND o."qualityProfile" = $3
                  AND o."pipelineVersion" = $4 AND vp."status" = 'COMPLETED'
                  AND vp."completedAt" = o."completedAt" AND \(wanted("vp"))
                """, key.parameters, operation: "look for a reusable result"
            ).first,
            let kept = try? JSONDecoder().decode(Kept.self, from: Data(try row.require("result", as: String.self).utf8))
        else { return nil }
        return FoundResult(jobId: try row.require("jobId"), completedAt: try row.require("completedAt"), result: kept)
    }

    /// Whether `found` still stands: its job COMPLETED as it was and wanted. Takes a share lock on
    /// the job's row (held to the end of the transaction), so the row cannot change meanwhile.
    func resultStands<Kept>(_ session: PostgresSession, _ found: FoundResult<Kept>) throws -> Bool {
        try session.query(
            """
            SELECT 1 AS ok FROM \(vp) AS vp
            WHERE vp."id" = $1 AND vp."status" = 'COMPLETED' AND vp."completedAt" = $2::timestamp AND \(wanted("vp"))
            FOR SHARE OF vp
            """, [String(found.jobId), found.completedAt], operation: "check the reused result stands"
        ).first != nil
    }

    /// Keeps `reusable` as made by `job` (inside the completing transaction, so it points at the
    /// row as completed). A newer result replaces an older one.
    func keepForReuse<Kept>(_ session: PostgresSession, _ reusable: ReusableResult<Kept>, job: Job) throws {
        try session.execute(
            """
            INSERT INTO \(tables.outputs) ("sha256", "processingType", "qualityProfile", "pipelineVersion", "jobId",
                "completedAt", "result")
            SELECT $1, $2, $3, $4::int, "id", "completedAt", $6::json FROM \(tables.videoProcessing) WHERE "id" = $5
            ON CONFLICT ("sha256", "processingType", "qualityProfile", "pipelineVersion") DO UPDATE SET
                "jobId" = EXCLUDED."jobId", "completedAt" = EXCLUDED."completedAt", "result" = EXCLUDED."result"
            """, reusable.key.parameters + [String(job.id), try Self.json(reusable.result)],
            operation: "keep a result for reuse")
    }

    /// Tries to become the one worker making the result under `key` (a session lock, held until
    /// `releaseReuseLock` or the session ends): false while another worker is making it.
    public func takeReuseLock(_ session: PostgresSession, key: ReuseKey) throws -> Bool {
        try session.query(
            "SELECT pg_try_advisory_lock($1::int8) AS locked", [key.lockKey], operation: "take the reuse lock"
        ).first?.require("locked", as: Bool.self) ?? false
    }

    /// Lets go of the lock `takeReuseLock` took (`ReuseKey.lockKey`).
    public func releaseReuseLock(_ session: PostgresSession, lockKey: String) throws {
        try session.query(
            "SELECT pg_advisory_unlock($1::int8) AS released", [lockKey], operation: "release the reuse lock")
    }
}
