/// Statements for local runs and one-shot commands (`OneShotJobs`): `enqueue` and `resetForReprocess`.
extension JobStore {
    /// A new upload (COMPLETED) and its job, as the app would insert them. Creates the user row
    /// if it is missing (local runs only). Returns (upload id, job id).
    public func enqueue(
        _ session: PostgresSession, userId: Int, storageKey: String, storageUrl: String, fileName: String,
        mimeType: String, fileSize: Int64, processingType: ProcessingType, qualityProfile: QualityProfile?
    ) throws -> (uploadId: Int, jobId: Int) {
        try session.transaction("enqueue a job") {
            // Only when missing: the app's own user table has NOT NULL columns an id alone cannot
            // fill, which PostgreSQL checks before it looks for a conflict.
            try session.execute(
                """
                INSERT INTO \(tables.user) ("id") SELECT $1::int
                WHERE NOT EXISTS (SELECT 1 FROM \(tables.user) WHERE "id" = $1::int) ON CONFLICT ("id") DO NOTHING
                """, [String(userId)], operation: "create the local user (user \(userId) does not exist)")
            let uploadId: Int = try session.query(
                """
                INSERT INTO \(tables.fileUpload) ("uploaderId", "fileName", "originalName", "mimeType", "fileSize",
                    "storageKey", "storageUrl", "status", "metadata")
                VALUES ($1, $2, $2, $3, $4, $5, $6, 'COMPLETED', '{}'::json)
                ON CONFLICT ("storageKey") DO UPDATE SET "updatedAt" = now()
                RETURNING "id"
                """, [String(userId), fileName, mimeType, String(fileSize), storageKey, storageUrl],
                operation: "insert the upload"
            ).first!.require("id")
            let jobId: Int = try session.query(
                """
                INSERT INTO \(tables.videoProcessing) ("userId", "fileUploadId", "processingType", "qualityProfile",
                    "inputStorageKey", "originalFileName", "inputMimeType", "inputFileSize")
                VALUES ($1, $2, $3::text::\(enumTypeName("processingtype")), $4::text::\(enumTypeName("qualityprofile")),
                    $5, $6, $7, $8)
                RETURNING "id"
                """,
                [
                    String(userId), String(uploadId), processingType.rawValue, qualityProfile?.rawValue, storageKey,
                    fileName, mimeType,
                    String(fileSize),
                ], operation: "insert the job"
            ).first!.require("id")
            return (uploadId, jobId)
        }
    }

    /// The enum type `migrate` creates for a column of the jobs table (local use only: the app's
    /// own types may be named otherwise, which is why nothing else names them).
    private func enumTypeName(_ column: String) -> String {
        let table = tables.videoProcessing.split(separator: ".").last!.dropFirst().dropLast()
        return "\"\(table)_\(column)_enum\""
    }

    /// What `reprocess` found.
    public enum ResetOutcome: Sendable, Equatable {
        case reset
        case missing
        /// A live worker holds the job (it sent a heartbeat within the stale window).
        case heldByWorker
    }

    /// Puts a job back to PENDING with a clean slate (its first look too: the stills are made
    /// again), whatever its state, unless a live worker holds it: one that sent a heartbeat within
    /// `staleAfter` seconds (then only with `force`).
    public func resetForReprocess(
        _ session: PostgresSession, jobId: Int, force: Bool, staleAfter: Double, event: ProcessingLogEvent
    ) throws -> ResetOutcome {
        try session.transaction("reset a job for reprocessing") {
            guard
                let row = try session.query(
                    """
                    SELECT "status"::text AS status,
                        "updatedAt" < \(Self.now) - make_interval(secs => $2::float8) AS free
                    FROM \(tables.videoProcessing) WHERE "id" = $1 FOR UPDATE
                    """, [String(jobId), String(staleAfter)], operation: "find the job"
                ).first
            else { return .missing }
            if try row.requireVocabulary("status") == JobStatus.processing, try !row.require("free", as: Bool.self),
                !force
            {
                return .heldByWorker
            }
            try session.execute(
                """
                UPDATE \(tables.videoProcessing) SET "status" = 'PENDING', "retryCount" = 0, "progress" = 0,
                    "errorMessage" = NULL, "startedAt" = NULL, "completedAt" = NULL, "inputMetadata" = NULL, "updatedAt" = now() AT TIME ZONE 'utc',
                    "processingLogs" = \(Self.appendLog(2))
                WHERE "id" = $1
                """, [String(jobId), try Self.json(event)], operation: "reset the job")
            return .reset
        }
    }
}
