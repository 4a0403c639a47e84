import Foundation
import JobVocabulary

/// Rescue of jobs whose worker went silent, and the queue's depth.
extension JobStore {
    /// Puts jobs left PROCESSING without a heartbeat for `staleAfter` seconds (their worker died,
    /// or lost the database for that long; a live run sends one at least every few seconds, and
    /// the fencing token makes a late worker's writes harmless) back to PENDING with `retryCount`
    /// + 1, or FAILED when out of attempts. Returns the ids and what became of them.
    ///
    /// `sparing` are the claims the calling worker runs itself: alive by its own knowledge, however
    /// late their heartbeat (a starved host or a slow database can delay one past `staleAfter`, and a
    /// worker must not take its own running job away). Other workers still rescue them.
    public func rescueStale(
        _ session: PostgresSession, staleAfter: Double, maxAttempts: Int, host: String, pid: Int32,
        sparing: [JobClaim] = []
    ) throws -> [(id: Int, status: JobStatus)] {
        try session.transaction("rescue stale jobs") {
            let orphaned = try session.query(
                """
                SELECT "id", "retryCount", "fileUploadId" FROM \(vp)
                WHERE "status" = 'PROCESSING' AND "updatedAt" < \(Self.now) - make_interval(secs => $1::float8)
                    AND ("id", "startedAt") NOT IN (SELECT * FROM unnest($2::bigint[], $3::timestamp[]))
                ORDER BY "updatedAt" FOR UPDATE SKIP LOCKED LIMIT 20
                """,
                [
                    String(staleAfter), Self.array(sparing.map { String($0.id) }), Self.array(sparing.map(\.token)),
                ], operation: "find stale jobs")
            return try orphaned.all.map { row in
                let id: Int = try row.require("id")
                let retryCount: Int = try row.require("retryCount")
                let retry = retryCount + 1 < maxAttempts
                let event = ProcessingLogEvent(
                    event: "rescued", attempt: retryCount + 1, host: host, pid: pid,
                    message: retry ? "retrying" : "no attempts left")
                try session.execute(
                    """
                    UPDATE \(vp) SET "status" = \(retry ? "'PENDING'" : "'FAILED'"),
                        "retryCount" = "retryCount" + \(retry ? 1 : 0),
                        "errorMessage" = $2, "completedAt" = \(retry ? "NULL" : Self.now),
                        "updatedAt" = \(Self.now), "processingLogs" = \(Self.appendLog(3))
                    WHERE "id" = $1 AND "status" = 'PROCESSING'
                    """,
                    [
                        String(id),
                        "crashed: the worker running this job stopped sending heartbeats (its process or host died); "
                            + (retry ? "it will be retried" : "no attempts are left, reprocess it to try again"),
                        try Self.json(event),
                    ], operation: "rescue a stale job")
                if let upload: Int = try row.decode("fileUploadId") {
                    try writeProcessingStatus(
                        session, jobId: id, fileUploadId: upload, status: retry ? .pending : .failed)
                }
                return (id, retry ? .pending : .failed)
            }
        }
    }

    /// How many jobs are waiting and running: exact, from the `(status, createdAt)` index, and
    /// cheap however many finished jobs the table holds (those are not counted here).
    public func depth(_ session: PostgresSession) throws -> [JobStatus: Int] {
        var depth: [JobStatus: Int] = [.pending: 0, .processing: 0]
        for row in try session.query(
            """
            SELECT "status"::text AS status, count(*) AS n FROM \(vp) WHERE "status" IN ('PENDING', 'PROCESSING')
            GROUP BY 1
            """, operation: "count waiting and running jobs"
        ).all {
            depth[try row.requireVocabulary("status")] = try row.require("n", as: Int.self)
        }
        return depth
    }
}
