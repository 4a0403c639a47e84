import Foundation

/// Background work of media-worker's own (its `variants` table): the efficient variant of a video
/// that proved popular. Each reuse of a kept result (a forward) counts; the reuse that reaches the
/// threshold queues the work, exactly once however many workers count at once (one row per result,
/// updated under its lock). Workers take it only when no job is runnable, and give it back as soon
/// as one is; a claim is fenced by its token like a job's.
extension JobStore {
    /// What variant work is: the kept result (`ReuseKey`) it adds a role to, and who made it.
    public struct VariantWork: Sendable, Equatable {
        public var key: ReuseKey
        /// The job whose kept result and keys the variant joins.
        public var jobId: Int
        public var token: String
        public var attempt: Int
    }

    /// What a claimed piece of variant work needs: the source job's input and the result it kept.
    public struct VariantSource<Kept: Codable & Sendable>: Sendable {
        public var inputStorageKey: String
        public var kept: Kept
    }

    /// Counts a reuse of the result under `key` (made by `jobId`); true when this reuse is the
    /// `threshold`th, which queues the variant work (once: later reuses only count).
    public func countReuse(_ session: PostgresSession, key: ReuseKey, jobId: Int, threshold: Int) throws -> Bool {
        let row = try session.query(
            """
            INSERT INTO \(tables.variants) AS v ("sha256", "processingType", "qualityProfile", "pipelineVersion",
                "jobId", "reuses", "status")
            VALUES ($1, $2, $3, $4::int, $5::int, 1, CASE WHEN $6::int <= 1 THEN 'PENDING' ELSE 'WAITING' END)
            ON CONFLICT ("sha256", "processingType", "qualityProfile", "pipelineVersion") DO UPDATE SET
                "reuses" = v."reuses" + 1, "updatedAt" = \(Self.now),
                "status" = CASE WHEN v."status" = 'WAITING' AND v."reuses" + 1 >= $6::int THEN 'PENDING'
                    ELSE v."status" END
            RETURNING "status", "reuses"
            """, key.parameters + [String(jobId), String(threshold)], operation: "count a reuse")
        return try row.first.map {
            try $0.require("status", as: String.self) == "PENDING" && $0.require("reuses") == threshold
        }
            ?? false
    }

    /// Claims the oldest queued variant work of `pipelineVersion` (or work whose worker stopped
    /// heartbeating for `staleAfter` seconds), if no job is runnable: variant work never goes
    /// ahead of a chat upload. Work tried three times is left FAILED.
    public func claimVariantWork(
        _ session: PostgresSession, pipelineVersion: Int, staleAfter: Double, uploadWait: Double, hasPausedTable: Bool
    ) throws -> VariantWork? {
        try session.transaction("claim variant work") {
            guard try !hasRunnableJob(session, uploadWait: uploadWait, hasPausedTable: hasPausedTable) else {
                return nil
            }
            try session.execute(
                """
                UPDATE \(tables.variants) SET "status" = 'FAILED', "token" = NULL, "updatedAt" = \(Self.now),
                    "error" = 'stopped \(Self.backgroundAttempts) times without finishing'
                WHERE "status" = 'PROCESSING' AND "attempts" >= \(Self.backgroundAttempts)
                    AND "updatedAt" < \(Self.now) - make_interval(secs => $1::float8)
                """, [String(staleAfter)], operation: "give up on variant work")
            return try session.query(
                """
                UPDATE \(tables.variants) AS v SET "status" = 'PROCESSING', "attempts" = v."attempts" + 1,
                    "token" = gen_random_uuid()::text, "updatedAt" = \(Self.now), "error" = NULL
                FROM (
                    SELECT "sha256", "processingType", "qualityProfile", "pipelineVersion" FROM \(tables.variants)
                    WHERE "pipelineVersion" = $1::int AND ("status" = 'PENDING' OR ("status" = 'PROCESSING'
                        AND "updatedAt" < \(Self.now) - make_interval(secs => $2::float8)))
                    ORDER BY "updatedAt" LIMIT 1 FOR UPDATE SKIP LOCKED
                ) AS next
                WHERE (v."sha256", v."processingType", v."qualityProfile", v."pipelineVersion")
                    = (next."sha256", next."processingType", next."qualityProfile", next."pipelineVersion")
                RETURNING v."sha256", v."processingType", v."qualityProfile", v."pipelineVersion", v."jobId",
                    v."token", v."attempts"
                """, [String(pipelineVersion), String(staleAfter)], operation: "claim variant work"
            ).first.map { row in
                VariantWork(
                    key: ReuseKey(
                        sha256: try row.require("sha256"), processingType: try row.requireVocabulary("processingType"),
                        qualityProfile: try row.requireVocabulary("qualityProfile"),
                        pipelineVersion: try row.require("pipelineVersion")),
                    jobId: try row.require("jobId"), token: try row.require("token"),
                    attempt: try row.require("attempts"))
            }
        }
    }

    /// The source of claimed work, as `Kept`: nil when its result is gone (the job reprocessed,
    /// failed or deleted since), in which case the work is left FAILED.
    public func variantSource<Kept: Codable & Sendable>(
        _ session: PostgresSession, _ work: VariantWork, as type: Kept.Type
    ) throws -> VariantSource<Kept>? {
        guard let found = try reusableResult(session, key: work.key, as: type), found.jobId == work.jobId,
            let input = try session.query(
                "SELECT \"inputStorageKey\" AS key FROM \(vp) WHERE \"id\" = $1", [String(work.jobId)],
                operation: "read the source job's input"
            ).first
        else {
            try finishVariantWork(session, work, status: .failed, error: "the result it was to extend is gone")
            return nil
        }
        return VariantSource(inputStorageKey: try input.require("key"), kept: found.result)
    }

    /// Bumps the claim's `updatedAt`; false when it was taken away (rescued by another worker).
    public func keepVariantWorkAlive(_ session: PostgresSession, _ work: VariantWork) throws -> Bool {
        try session.execute(
            "UPDATE \(tables.variants) SET \"updatedAt\" = \(Self.now) WHERE \(variantFence) AND \"status\" = 'PROCESSING'",
            work.key.parameters + [work.token], operation: "keep variant work alive") == 1
    }

    /// Gives claimed work back (a job became runnable, the worker stops): queued again, the
    /// attempt not counted.
    public func releaseVariantWork(_ session: PostgresSession, _ work: VariantWork) throws {
        try session.execute(
            """
            UPDATE \(tables.variants) SET "status" = 'PENDING', "token" = NULL, "attempts" = "attempts" - 1,
                "updatedAt" = \(Self.now)
            WHERE \(variantFence)
            """, work.key.parameters + [work.token], operation: "give variant work back")
    }

    /// Ends claimed work as `status` (completed, failed, or pending to try again).
    public func finishVariantWork(_ session: PostgresSession, _ work: VariantWork, status: JobStatus, error: String?)
        throws
    {
        try session.execute(
            """
            UPDATE \(tables.variants) SET "status" = $6, "error" = $7, "token" = NULL, "updatedAt" = \(Self.now)
            WHERE \(variantFence)
            """, work.key.parameters + [work.token, status.rawValue, error], operation: "end variant work")
    }

    /// Adds a made variant, in one transaction fenced by the claim: the kept result becomes
    /// `kept` (so later forwards get the variant too), and every completed, wanted job of the same
    /// bytes, type and profile (the source and its forwards) gains `role` in its output columns and
    /// its upload's `metadata.variants`: each row naming the object keeps it stored. False when the
    /// claim was taken away.
    public func completeVariantWork<Kept: Codable & Sendable>(
        _ session: PostgresSession, _ work: VariantWork, role: String, key: String, url: String,
        metadata: any Encodable, variant: any Encodable, kept: Kept
    ) throws -> Bool {
        try session.transaction("complete variant work") {
            guard
                try session.execute(
                    """
                    UPDATE \(tables.variants) SET "status" = 'COMPLETED', "token" = NULL, "updatedAt" = \(Self.now)
                    WHERE \(variantFence) AND "status" = 'PROCESSING'
                    """, work.key.parameters + [work.token], operation: "complete variant work") == 1
            else { return false }
            try session.execute(
                """
                UPDATE \(tables.outputs) SET "result" = $6::json
                WHERE "sha256" = $1 AND "processingType" = $2 AND "qualityProfile" = $3 AND "pipelineVersion" = $4::int
                    AND "jobId" = $5::int
                """, work.key.parameters + [String(work.jobId), try Self.json(kept)],
                operation: "keep the variant for reuse")
            try session.execute(
                """
                UPDATE \(vp) SET
                    "outputStorageKeys" = (COALESCE("outputStorageKeys"::jsonb, '{}') || jsonb_build_object($2::text, $3::text))::json,
                    "outputUrls" = (COALESCE("outputUrls"::jsonb, '{}') || jsonb_build_object($2::text, $4::text))::json,
                    "outputMetadata" = (COALESCE("outputMetadata"::jsonb, '{}') || jsonb_build_object($2::text, $5::jsonb))::json
                WHERE "status" = 'COMPLETED' AND "inputMetadata"->>'sha256' = $1 AND "processingType"::text = $6
                    AND COALESCE("qualityProfile"::text, '\(QualityProfile.medium.rawValue)') = $7 AND \(wanted(vp))
                """,
                [
                    work.key.sha256, role, key, url, try Self.json(metadata), work.key.processingType.rawValue,
                    work.key.qualityProfile.rawValue,
                ], operation: "add the variant to the jobs")
            try session.execute(
                """
                UPDATE \(tables.fileUpload) AS fu SET "metadata" = jsonb_set(COALESCE(fu."metadata"::jsonb, '{}'),
                    '{variants}', COALESCE(fu."metadata"::jsonb -> 'variants', '{}') || jsonb_build_object($4::text, $5::jsonb))::json
                FROM \(vp) AS vp
                WHERE vp."fileUploadId" = fu."id" AND vp."status" = 'COMPLETED' AND vp."inputMetadata"->>'sha256' = $1
                    AND vp."processingType"::text = $2
                    AND COALESCE(vp."qualityProfile"::text, '\(QualityProfile.medium.rawValue)') = $3 AND \(wanted("vp"))
                """,
                [
                    work.key.sha256, work.key.processingType.rawValue, work.key.qualityProfile.rawValue, role,
                    try Self.json(variant),
                ], operation: "add the variant to the uploads")
            return true
        }
    }

    /// A claim of variant work is its key and its token ($1…$5).
    private var variantFence: String {
        """
        "sha256" = $1 AND "processingType" = $2 AND "qualityProfile" = $3 AND "pipelineVersion" = $4::int
            AND "token" = $5
        """
    }
}
