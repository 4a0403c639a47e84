import Foundation

/// Claiming: which job a free slot takes next. One statement, on the app's `(status, createdAt)`
/// and `(userId, status)` indexes, with `FOR UPDATE SKIP LOCKED`; nothing in it lasts beyond its
/// transaction, so it works through a transaction-mode pooler.
extension JobStore {
    /// Which jobs a claim may take, and how it chooses among them.
    public struct ClaimRules: Sendable, Equatable {
        /// Only quick work (a host's fast lane): THUMBNAIL, METADATA, and the first look of a job
        /// with a long pass (download, reuse, probe, stills). Otherwise anything runnable.
        public var quickOnly: Bool
        /// Slots one uploader may hold across the fleet while another uploader has a runnable job
        /// (0: no cap beyond the fewest-running-first order).
        public var maxSlotsPerUploader: Int
        /// Whether media-worker's paused-types table exists (without it nothing is paused).
        public var hasPausedTable: Bool

        public init(quickOnly: Bool = false, maxSlotsPerUploader: Int = 0, hasPausedTable: Bool = true) {
            self.quickOnly = quickOnly
            self.maxSlotsPerUploader = maxSlotsPerUploader
            self.hasPausedTable = hasPausedTable
        }
    }

    /// Claims the next runnable job, or returns nil. Runnable: PENDING, past its retry backoff
    /// (`retryBase` × 2^(retries−1), ±25 % jitter derived from the id), its upload COMPLETED (or
    /// waited on for longer than `uploadWait`, when it is claimed to fail), and not held back by a
    /// paused type (a paused type's first look still runs; its long pass waits).
    ///
    /// The next job goes to the uploader (`userId`; jobs without one count as one uploader) with
    /// the fewest jobs PROCESSING across the fleet, then to the oldest: what one person sees does
    /// not depend on how much somebody else sent. A retried job queues as if it had arrived
    /// `retryQueuePenalty` later per retry. With a cap (`maxSlotsPerUploader`), an uploader holding
    /// that many jobs gets no more while another uploader has a runnable job; alone, it gets every
    /// slot. With `jobId`, claims only that job (for `reprocess`), ignoring backoff and pauses. A
    /// row whose type or profile this version does not know ends FAILED with `unsupported`, and
    /// the claim goes on to the next. `lane` is written in the `claimed` event.
    public func claim(
        _ session: PostgresSession, rules: ClaimRules = ClaimRules(), retryBase: Double, uploadWait: Double,
        host: String, pid: Int32, lane: String = "encode", jobId: Int? = nil
    ) throws -> Job? {
        try session.transaction("claim a job") {
            while true {
                guard
                    let row = try claimRow(
                        session, rules: rules, retryBase: retryBase, uploadWait: uploadWait, host: host, pid: pid,
                        lane: lane, jobId: jobId)
                else {
                    return nil
                }
                do {
                    return try Job(row)
                } catch let error as JobRowError {
                    try failUnknown(session, row: row, error: error, host: host, pid: pid)
                    if jobId != nil { return nil }
                }
            }
        }
    }

    /// SQL: the job `vp` has a long pass whose first look has not been done (no `inputMetadata`
    /// with the bytes' hash yet).
    static let firstLookPending = """
        (vp."processingType" IN (\(ProcessingType.allCases.filter(\.hasLongPass).map { "'\($0.rawValue)'" }
            .joined(separator: ", "))) AND (vp."inputMetadata"->>'sha256') IS NULL)
        """

    /// SQL: the job `vp` is quick work.
    private static let quick = """
        (vp."processingType" IN (\(ProcessingType.allCases.filter { !$0.hasLongPass }.map { "'\($0.rawValue)'" }
            .joined(separator: ", "))) OR \(firstLookPending))
        """

    /// SQL: the job `vp`'s type is paused (always false without the paused-types table).
    func typePaused(_ hasPausedTable: Bool) -> String {
        hasPausedTable
            ? "(vp.\"processingType\"::text IN (SELECT \"processingType\" FROM \(tables.paused)))" : "false"
    }

    /// SQL: the job `vp` waits for its upload no longer (COMPLETED, or waited on for `$n` seconds).
    private static func uploadReady(_ n: Int) -> String {
        """
        (fu."id" IS NULL OR fu."status"::text = 'COMPLETED' OR vp."createdAt" < \(now) - make_interval(secs => $\(n)::float8))
        """
    }

    private func claimRow(
        _ session: PostgresSession, rules: ClaimRules, retryBase: Double, uploadWait: Double, host: String,
        pid: Int32, lane: String, jobId: Int?
    ) throws -> PostgresRow? {
        try session.query(
            """
            WITH running AS (
                SELECT COALESCE("userId", -1) AS uploader, count(*) AS n FROM \(vp)
                WHERE "status" = 'PROCESSING' GROUP BY 1
            ), runnable AS (
                SELECT vp."id", COALESCE(vp."userId", -1) AS uploader,
                    vp."createdAt" + make_interval(secs => \(Self.retryQueuePenalty) * vp."retryCount") AS "queuedAt",
                    \(typePaused(rules.hasPausedTable)) AS paused
                FROM \(vp) AS vp
                LEFT JOIN \(tables.fileUpload) AS fu ON fu."id" = vp."fileUploadId"
                WHERE vp."status" = 'PENDING' AND ($6::int IS NULL OR vp."id" = $6::int)
                  AND ($6::int IS NOT NULL OR vp."updatedAt" <= \(Self.now) - make_interval(secs => CASE WHEN vp."retryCount" = 0 THEN 0
                      ELSE $1::float8 * power(2, vp."retryCount" - 1)
                           * (0.75 + 0.5 * ((vp."id"::bigint * 2654435761) % 1000) / 1000.0) END))
                  AND \(Self.uploadReady(2))
                  AND (NOT $7::bool OR \(Self.quick))
                  AND ($6::int IS NOT NULL OR NOT \(typePaused(rules.hasPausedTable)) OR \(Self.firstLookPending))
            ), crowd AS (
                SELECT count(DISTINCT uploader) AS uploaders FROM runnable
            ), candidate AS (
                SELECT vp."id", runnable.paused FROM runnable
                JOIN \(vp) AS vp ON vp."id" = runnable."id"
                LEFT JOIN running ON running.uploader = runnable.uploader
                WHERE vp."status" = 'PENDING'
                  AND ($8::int = 0 OR COALESCE(running.n, 0) < $8::int OR (SELECT uploaders FROM crowd) <= 1)
                ORDER BY COALESCE(running.n, 0), runnable."queuedAt", vp."id"
                FOR UPDATE OF vp SKIP LOCKED
                LIMIT 1
            )
            UPDATE \(vp) SET "status" = 'PROCESSING', "startedAt" = \(Self.clock), "errorMessage" = NULL,
                "progress" = 0, "completedAt" = NULL, "updatedAt" = \(Self.now),
                "processingLogs" = \(Self.appendLog(expression: """
                        json_build_object('at', $3::text, 'event', 'claimed', 'attempt', \(vp)."retryCount" + 1,
                                          'host', $4::text, 'pid', $5::int, 'lane', $9::text)
                        """))
            FROM candidate WHERE \(vp)."id" = candidate."id"
            RETURNING \(vp)."id", "userId", "fileUploadId", "processingType"::text AS "processingType",
                "qualityProfile"::text AS "qualityProfile", "inputStorageKey", "originalFileName", "inputMimeType",
                "inputFileSize", "retryCount", "startedAt"::text AS "startedAt",
                "inputMetadata"->>'sha256' AS "firstLookSha256", "outputMetadata"::text AS "published",
                candidate.paused AS "paused"
            """,
            [
                String(retryBase), String(uploadWait), ProcessingLogEvent.timestamp(), host, String(pid),
                jobId.map(String.init), rules.quickOnly ? "true" : "false", String(rules.maxSlotsPerUploader), lane,
            ],
            operation: "claim a job"
        ).first
    }

    /// Ends a claimed row media-worker cannot run as FAILED, saying why.
    private func failUnknown(_ session: PostgresSession, row: PostgresRow, error: JobRowError, host: String, pid: Int32)
        throws
    {
        let id: Int = try row.require("id")
        let failure = JobFailure(.unsupported, "\(error)")
        let event = ProcessingLogEvent(
            event: "failed", attempt: try row.require("retryCount", as: Int.self) + 1, host: host, pid: pid,
            message: "\(failure)")
        try session.execute(
            """
            UPDATE \(vp) SET "status" = 'FAILED', "errorMessage" = $2, "completedAt" = \(Self.now),
                "updatedAt" = \(Self.now), "processingLogs" = \(Self.appendLog(3))
            WHERE "id" = $1
            """, [String(id), "\(failure)", try Self.json(event)], operation: "fail a job media-worker cannot run")
        try notify(
            session, jobId: id, fileUploadId: try row.decode("fileUploadId"), status: .failed,
            processingType: try row.require("processingType"))
    }

    /// Whether no job is runnable or running, apart from those waiting for their upload or held
    /// back by a paused type.
    public func isIdle(_ session: PostgresSession, uploadWait: Double, hasPausedTable: Bool) throws -> Bool {
        try session.query(
            """
            SELECT count(*) AS n FROM \(vp) AS vp LEFT JOIN \(tables.fileUpload) AS fu ON fu."id" = vp."fileUploadId"
            WHERE vp."status" = 'PROCESSING' OR (vp."status" = 'PENDING' AND \(Self.uploadReady(1))
                AND (NOT \(typePaused(hasPausedTable)) OR \(Self.firstLookPending)))
            """, [String(uploadWait)], operation: "check for remaining jobs"
        ).first?.require("n", as: Int.self) == 0
    }

    /// Whether a job is waiting that a slot could run now; with `needingAnEncodeSlot`, only jobs
    /// with a long pass (quick work has the fast lane): variant work gives its slot back for those.
    public func hasRunnableJob(
        _ session: PostgresSession, uploadWait: Double, hasPausedTable: Bool, needingAnEncodeSlot: Bool = false
    ) throws -> Bool {
        let long = ProcessingType.allCases.filter(\.hasLongPass).map { "'\($0.rawValue)'" }.joined(separator: ", ")
        return try session.query(
            """
            SELECT EXISTS (SELECT 1 FROM \(vp) AS vp LEFT JOIN \(tables.fileUpload) AS fu ON fu."id" = vp."fileUploadId"
                WHERE vp."status" = 'PENDING' AND \(Self.uploadReady(1))
                AND (NOT \(typePaused(hasPausedTable)) OR \(Self.firstLookPending))
                AND (NOT $2::bool OR vp."processingType"::text IN (\(long)))) AS waiting
            """, [String(uploadWait), String(needingAnEncodeSlot)], operation: "look for runnable jobs"
        ).first?.require("waiting", as: Bool.self) ?? false
    }

    // MARK: Pausing

    /// A processing type whose long pass operators paused fleet-wide.
    public struct PausedType: Codable, Sendable, Equatable {
        public var processingType: ProcessingType
        /// When (ISO 8601, UTC).
        public var since: String
        public var reason: String
    }

    /// Pauses `types` fleet-wide: from every worker's next claim, their long pass (and THUMBNAIL
    /// and METADATA jobs altogether) waits; first looks (stills, metadata, reuse) go on.
    public func pause(_ session: PostgresSession, _ types: [ProcessingType], reason: String) throws {
        try session.transaction("pause processing types") {
            for type in types {
                try session.execute(
                    """
                    INSERT INTO \(tables.paused) ("processingType", "reason") VALUES ($1, $2)
                    ON CONFLICT ("processingType") DO UPDATE SET "reason" = EXCLUDED."reason"
                    """, [type.rawValue, reason], operation: "pause a processing type")
            }
        }
    }

    /// Resumes `types` and wakes the workers (a notification on the jobs channel). Returns how
    /// many were paused.
    public func resume(_ session: PostgresSession, _ types: [ProcessingType]) throws -> Int {
        try session.transaction("resume processing types") {
            let resumed = try session.execute(
                "DELETE FROM \(tables.paused) WHERE \"processingType\" = ANY($1::text[])",
                [Self.array(types.map(\.rawValue))], operation: "resume processing types")
            try session.execute(
                "SELECT pg_notify($1, 'resumed')", [Self.jobsChannel], operation: "wake the workers")
            return resumed
        }
    }

    /// The types paused now, oldest pause first.
    public func pausedTypes(_ session: PostgresSession) throws -> [PausedType] {
        try session.query(
            """
            SELECT "processingType", to_char("pausedAt", 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS since, "reason"
            FROM \(tables.paused) ORDER BY "pausedAt", "processingType"
            """, operation: "list paused types"
        ).all.compactMap { row in
            guard let type = ProcessingType(rawValue: try row.require("processingType")) else { return nil }
            return PausedType(processingType: type, since: try row.require("since"), reason: try row.require("reason"))
        }
    }

    /// Whether media-worker's own table `name` (one of `tables`) exists: an app database nobody
    /// ran `migrate --own-tables-only` on has none.
    public func hasTable(_ session: PostgresSession, _ name: String) throws -> Bool {
        try session.query(
            "SELECT to_regclass($1) IS NOT NULL AS present", [name], operation: "look for media-worker's own table"
        ).first?.require("present", as: Bool.self) ?? false
    }
}
