import Foundation

/// The pieces a long video's main video is encoded in (media-worker's own `pieces` table). The
/// job's own run splits it and stays its coordinator: it keeps the job's claim (so cancel, rescue
/// and reprocess of the job work as for any job), encodes pieces itself, and joins them; any
/// worker's free encode slot may take the others. A piece belongs to one run of its job (`run`
/// is the job's claim token): a new run (a rescue, a reprocess) replaces the rows of the old one,
/// and a piece is claimable only while its run still holds the job. A claim of a piece is fenced
/// by its own token, like a job's.
extension JobStore {
    /// A claimed piece, with what a worker needs of its job to encode it.
    public struct ClaimedPiece<Span: Codable & Sendable>: Sendable {
        public var jobId: Int
        /// The run the piece belongs to: its job's claim token (`Job.token`, the `startedAt` of the
        /// claim) when the run cut the video, as the pieces table's `run` column holds it.
        public var run: String
        public var index: Int
        public var span: Span
        /// This claim of the piece, which fences its heartbeats and its end.
        public var token: String
        /// 1 for the first claim of the piece.
        public var attempt: Int
        public var inputStorageKey: String
        public var inputFileSize: Int64
        public var processingType: ProcessingType
        public var qualityProfile: QualityProfile

        /// The claim of the job's run the piece belongs to (`Job.claim` of that run).
        public var runClaim: JobClaim { JobClaim(id: jobId, token: run) }
    }

    /// Where a run's pieces stand.
    public struct PiecesState: Sendable, Equatable {
        public var total: Int
        public var completed: Int
        /// Finished and unfinished pieces' progress, summed (0…total).
        public var progress: Double
        /// The error of a piece that failed three times, if any.
        public var failure: String?
        /// The storage keys of the completed pieces, in order.
        public var keys: [String]
    }

    /// Records the pieces of `job`'s run, replacing those of earlier runs; false when the run was
    /// fenced off meanwhile (nothing written).
    public func insertPieces(_ session: PostgresSession, job: Job, spans: [some Encodable]) throws -> Bool {
        try session.transaction("record the pieces") {
            guard
                try session.query(
                    "SELECT 1 AS ok FROM \(vp) WHERE \(fence(1)) FOR UPDATE", [String(job.id), job.token],
                    operation: "hold the job for its pieces"
                ).first != nil
            else { return false }
            try session.execute(
                "DELETE FROM \(tables.pieces) WHERE \"jobId\" = $1", [String(job.id)],
                operation: "drop the pieces of earlier runs")
            for (index, span) in spans.enumerated() {
                try session.execute(
                    """
                    INSERT INTO \(tables.pieces) ("jobId", "run", "index", "span") VALUES ($1::int, $2, $3::int, $4::json)
                    """, [String(job.id), job.token, String(index), try Self.json(span)], operation: "record a piece")
            }
            return true
        }
    }

    /// Claims the next piece to encode: of `jobId` when given (the coordinator takes its own),
    /// else of any job whose run still holds it, oldest job first, in order. A piece whose
    /// worker stopped heartbeating for `staleAfter` seconds is taken again, unless its token is in
    /// `sparing` (the calling worker runs it itself); one tried three times is not.
    public func claimPiece<Span: Codable & Sendable>(
        _ session: PostgresSession, ofJob jobId: Int?, staleAfter: Double, worker: String, sparing: [String] = [],
        as type: Span.Type
    ) throws -> ClaimedPiece<Span>? {
        try session.transaction("claim a piece") {
            try session.query(
                """
                UPDATE \(tables.pieces) AS p SET "status" = 'PROCESSING', "attempts" = p."attempts" + 1,
                    "token" = gen_random_uuid()::text, "updatedAt" = \(Self.now), "worker" = $3, "progress" = 0
                FROM (
                    SELECT pieces."jobId", pieces."run", pieces."index" FROM \(tables.pieces) AS pieces
                    JOIN \(vp) AS job ON job."id" = pieces."jobId" AND job."status" = 'PROCESSING'
                        AND job."startedAt"::text = pieces."run"
                    WHERE ($1::int IS NULL OR pieces."jobId" = $1::int) AND pieces."attempts" < \(Self.backgroundAttempts)
                        AND (pieces."status" = 'PENDING' OR (pieces."status" = 'PROCESSING'
                            AND pieces."updatedAt" < \(Self.now) - make_interval(secs => $2::float8)
                            AND NOT COALESCE(pieces."token" = ANY($4::text[]), false)))
                    ORDER BY pieces."jobId", pieces."index" LIMIT 1 FOR UPDATE OF pieces SKIP LOCKED
                ) AS next, \(vp) AS job
                WHERE (p."jobId", p."run", p."index") = (next."jobId", next."run", next."index") AND job."id" = p."jobId"
                RETURNING p."jobId", p."run", p."index", p."span"::text AS span, p."token", p."attempts",
                    job."inputStorageKey", job."inputFileSize"::bigint AS "inputFileSize",
                    job."processingType"::text AS "processingType",
                    COALESCE(job."qualityProfile"::text, 'MEDIUM') AS "qualityProfile"
                """,
                [
                    jobId.map(String.init), String(staleAfter), worker,
                    Self.array(sparing),
                ], operation: "claim a piece"
            ).first.map { row in
                ClaimedPiece(
                    jobId: try row.require("jobId"), run: try row.require("run"), index: try row.require("index"),
                    span: try JSONDecoder().decode(
                        Span.self, from: Data(try row.require("span", as: String.self).utf8)),
                    token: try row.require("token"), attempt: try row.require("attempts"),
                    inputStorageKey: try row.require("inputStorageKey"),
                    inputFileSize: try row.require("inputFileSize"),
                    processingType: try row.requireVocabulary("processingType"),
                    qualityProfile: try row.requireVocabulary("qualityProfile"))
            }
        }
    }

    /// Bumps a claimed piece's heartbeat and progress (0…1); false when it was taken away (its
    /// job cancelled, reprocessed or rescued, or the piece rescued by another worker).
    public func keepPieceAlive<Span>(_ session: PostgresSession, _ piece: ClaimedPiece<Span>, progress: Double) throws
        -> Bool
    {
        try session.execute(
            """
            UPDATE \(tables.pieces) AS p SET "updatedAt" = \(Self.now), "progress" = $5::real
            WHERE \(pieceFence) AND "status" = 'PROCESSING' AND EXISTS (
                SELECT 1 FROM \(vp) AS job WHERE job."id" = p."jobId" AND job."status" = 'PROCESSING'
                    AND job."startedAt"::text = p."run")
            """, pieceParameters(piece) + [String(min(1, max(0, progress)))], operation: "keep a piece alive") == 1
    }

    /// Ends a claimed piece: COMPLETED with its stored `key`, or, with an `error`, PENDING to try
    /// again (FAILED after its third attempt), or given back uncounted (`released`).
    public func finishPiece<Span>(
        _ session: PostgresSession, _ piece: ClaimedPiece<Span>, key: String? = nil, error: String? = nil,
        released: Bool = false
    ) throws -> Bool {
        let retried = released || piece.attempt < Self.backgroundAttempts
        let status = key != nil ? "COMPLETED" : retried ? "PENDING" : "FAILED"
        return try session.execute(
            """
            UPDATE \(tables.pieces) SET "status" = $5, "key" = $6, "error" = $7, "token" = NULL,
                "attempts" = "attempts" - $8::int, "progress" = CASE WHEN $5 = 'COMPLETED' THEN 1 ELSE 0 END,
                "updatedAt" = \(Self.now)
            WHERE \(pieceFence)
            """, pieceParameters(piece) + [status, key, error, released ? "1" : "0"], operation: "end a piece") == 1
    }

    /// Where the pieces of `job`'s run stand. A piece whose worker stopped heartbeating for
    /// `staleAfter` seconds on its third attempt counts as failed (nobody will take it again).
    public func piecesState(_ session: PostgresSession, job: Job, staleAfter: Double) throws -> PiecesState {
        let rows = try session.query(
            """
            SELECT CASE WHEN "status" = 'PROCESSING' AND "attempts" >= \(Self.backgroundAttempts)
                    AND "updatedAt" < \(Self.now) - make_interval(secs => $3::float8) THEN 'FAILED' ELSE "status" END
                    AS status,
                "progress"::float8 AS progress, "key",
                COALESCE("error", 'its worker stopped on each of three attempts') AS error
            FROM \(tables.pieces) WHERE "jobId" = $1 AND "run" = $2 ORDER BY "index"
            """, [String(job.id), job.token, String(staleAfter)], operation: "read the pieces"
        ).all
        var state = PiecesState(total: rows.count, completed: 0, progress: 0, failure: nil, keys: [])
        for row in rows {
            let status: String = try row.require("status")
            state.progress += try row.require("progress", as: Double.self)
            if status == "COMPLETED" {
                state.completed += 1
                if let key: String = try row.decode("key") { state.keys.append(key) }
            } else if status == "FAILED" {
                state.failure = try row.decode("error") ?? "a piece failed"
            }
        }
        return state
    }

    /// Forgets the pieces of `job`'s run (it ended, or was taken away; a later run's stay).
    public func deletePieces(_ session: PostgresSession, job: Job) throws {
        try session.execute(
            "DELETE FROM \(tables.pieces) WHERE \"jobId\" = $1 AND \"run\" = $2", [String(job.id), job.token],
            operation: "forget the pieces")
    }

    /// A claim of a piece is its job, run, index and token ($1…$4).
    private var pieceFence: String {
        "\"jobId\" = $1::int AND \"run\" = $2 AND \"index\" = $3::int AND \"token\" = $4"
    }

    private func pieceParameters<Span>(_ piece: ClaimedPiece<Span>) -> [String?] {
        [String(piece.jobId), piece.run, String(piece.index), piece.token]
    }
}
