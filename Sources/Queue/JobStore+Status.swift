import Foundation

/// What the operators' `/status` page shows of the queue. Every query is bounded and served by the
/// app's `(status, createdAt)` index: exact counts only for the few unfinished jobs, and for the
/// finished ones a window of the last hour (of jobs created within a day), never the whole table.
extension JobStore {
    /// The queue, as the page draws it.
    public struct QueueStatus: Codable, Sendable, Equatable {
        /// When the snapshot was taken (ISO 8601, UTC).
        public var at: String
        /// PENDING and PROCESSING: all of them; COMPLETED, FAILED, CANCELLED: in the last hour.
        public var counts: [String: Int]
        public var running: [RunningJob]
        /// Jobs finished in each of the last six 10-minute windows, oldest first.
        public var completedPerTenMinutes: [Int]
        public var failedPerTenMinutes: [Int]
        /// The newest failures (of the last week), newest first.
        public var failures: [FailedJob]
        /// Workers running a job, or that claimed one which finished in the last hour.
        public var workers: [WorkerSeen]
        /// Each uploader's share of the running jobs, most first (ids only; the top 20).
        public var uploaders: [UploaderShare]
        /// Types whose long pass operators paused.
        public var paused: [PausedType]
    }

    public struct UploaderShare: Codable, Sendable, Equatable {
        /// The `userId`; nil for jobs without one (they count as one uploader).
        public var userId: Int?
        public var running: Int
        /// Of all running jobs, 0…1.
        public var share: Double
    }

    public struct RunningJob: Codable, Sendable, Equatable {
        public var id: Int
        public var type: String
        public var profile: String
        public var progress: Int
        public var attempt: Int
        public var host: String?
        public var pid: Int?
        /// Where it runs on its host: `encode` or `fast` (from its latest claim).
        public var lane: String?
        public var file: String
        public var ageSeconds: Double
        /// Seconds since its last heartbeat.
        public var quietSeconds: Double
        /// Seconds its run expects to go on (`estimatedDurationSeconds` less its age so far), once
        /// known; never under 0.
        public var leftSeconds: Double?
    }

    public struct FailedJob: Codable, Sendable, Equatable {
        public var id: Int
        public var type: String
        public var file: String
        public var errorMessage: String
        public var at: String?
    }

    public struct WorkerSeen: Codable, Sendable, Equatable {
        public var host: String
        public var pid: Int
        public var running: Int
        /// Seconds since it last showed a sign of life (a heartbeat, or a job it finished).
        public var lastSeenSeconds: Double
    }

    public func queueStatus(_ session: PostgresSession) throws -> QueueStatus {
        let vp = tables.videoProcessing
        let recent = """
            "status" IN ('COMPLETED', 'FAILED', 'CANCELLED') AND "createdAt" > \(Self.now) - interval '1 day'
              AND "completedAt" > \(Self.now) - interval '1 hour'
            """
        var counts: [String: Int] = [:]
        for row in try session.query(
            """
            SELECT "status"::text AS status, count(*) AS n FROM \(vp) WHERE "status" IN ('PENDING', 'PROCESSING')
            GROUP BY 1
            UNION ALL
            SELECT "status"::text, count(*) FROM \(vp) WHERE \(recent) GROUP BY 1
            """, operation: "count jobs for the status page"
        ).all {
            counts[try row.require("status")] = try row.require("n", as: Int.self)
        }
        let running = try session.query(
            """
            SELECT vp."id", vp."processingType"::text AS type, COALESCE(vp."qualityProfile"::text, 'MEDIUM') AS profile,
                vp."progress", vp."retryCount" + 1 AS attempt, vp."originalFileName" AS file,
                extract(epoch FROM \(Self.now) - vp."startedAt")::float8 AS age,
                extract(epoch FROM \(Self.now) - vp."updatedAt")::float8 AS quiet,
                greatest(0, vp."estimatedDurationSeconds" - extract(epoch FROM \(Self.now) - vp."startedAt"))::float8
                    AS "left",
                claim.entry->>'host' AS host, (claim.entry->>'pid')::int AS pid, claim.entry->>'lane' AS lane
            FROM \(vp) AS vp
            LEFT JOIN LATERAL (
                SELECT entry FROM json_array_elements(
                    CASE WHEN json_typeof(vp."processingLogs") = 'array' THEN vp."processingLogs" ELSE '[]'::json END
                ) WITH ORDINALITY AS logs(entry, position)
                WHERE entry->>'event' = 'claimed' ORDER BY position DESC LIMIT 1
            ) AS claim ON true
            WHERE vp."status" = 'PROCESSING' ORDER BY vp."createdAt" LIMIT 100
            """, operation: "list running jobs"
        ).all.map { row in
            RunningJob(
                id: try row.require("id"), type: try row.require("type"), profile: try row.require("profile"),
                progress: try row.require("progress"), attempt: try row.require("attempt"),
                host: try row.decode("host"), pid: try row.decode("pid"), lane: try row.decode("lane"),
                file: try row.require("file"), ageSeconds: try row.decode("age") ?? 0,
                quietSeconds: try row.decode("quiet") ?? 0, leftSeconds: try row.decode("left"))
        }
        let uploaders = try session.query(
            """
            SELECT "userId" AS uploader, count(*) AS n, count(*)::float8 / sum(count(*)) OVER () AS share
            FROM \(vp) WHERE "status" = 'PROCESSING' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20
            """, operation: "count running jobs per uploader"
        ).all.map { row in
            UploaderShare(
                userId: try row.decode("uploader"), running: try row.require("n"), share: try row.require("share"))
        }
        var completed = [Int](repeating: 0, count: 6)
        var failed = [Int](repeating: 0, count: 6)
        for row in try session.query(
            """
            SELECT "status"::text AS status,
                5 - least(5, floor(extract(epoch FROM \(Self.now) - "completedAt") / 600))::int AS bucket,
                count(*) AS n
            FROM \(vp) WHERE \(recent) GROUP BY 1, 2
            """, operation: "count finished jobs per ten minutes"
        ).all {
            let bucket: Int = try row.require("bucket")
            let count: Int = try row.require("n")
            switch try row.require("status", as: String.self) {
            case JobStatus.completed.rawValue: completed[bucket] += count
            case JobStatus.failed.rawValue: failed[bucket] += count
            default: break
            }
        }
        let failures = try session.query(
            """
            SELECT "id", "processingType"::text AS type, "originalFileName" AS file,
                COALESCE("errorMessage", '') AS error,
                to_char("completedAt", 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS at
            FROM \(vp) WHERE "status" = 'FAILED' AND "createdAt" > \(Self.now) - interval '7 days'
            ORDER BY "completedAt" DESC NULLS LAST LIMIT 20
            """, operation: "list recent failures"
        ).all.map { row in
            FailedJob(
                id: try row.require("id"), type: try row.require("type"), file: try row.require("file"),
                errorMessage: try row.require("error"), at: try row.decode("at"))
        }
        // Workers: who runs what now (its latest claim), and who claimed jobs that finished lately.
        var workers: [String: WorkerSeen] = [:]
        for job in running {
            guard let host = job.host, let pid = job.pid else { continue }
            var worker =
                workers["\(host)/\(pid)"] ?? WorkerSeen(host: host, pid: pid, running: 0, lastSeenSeconds: .infinity)
            worker.running += 1
            worker.lastSeenSeconds = min(worker.lastSeenSeconds, job.quietSeconds)
            workers["\(host)/\(pid)"] = worker
        }
        for row in try session.query(
            """
            SELECT claim->>'host' AS host, (claim->>'pid')::int AS pid,
                min(extract(epoch FROM \(Self.now) - vp."completedAt"))::float8 AS seen
            FROM \(vp) AS vp, LATERAL json_array_elements(
                CASE WHEN json_typeof(vp."processingLogs") = 'array' THEN vp."processingLogs" ELSE '[]'::json END
            ) AS claim
            WHERE claim->>'event' = 'claimed' AND \(recent)
            GROUP BY 1, 2 LIMIT 200
            """, operation: "list workers seen"
        ).all {
            let (host, pid): (String, Int) = (try row.require("host"), try row.require("pid"))
            let seen: Double = try row.decode("seen") ?? 0
            var worker =
                workers["\(host)/\(pid)"] ?? WorkerSeen(host: host, pid: pid, running: 0, lastSeenSeconds: seen)
            worker.lastSeenSeconds = min(worker.lastSeenSeconds, seen)
            workers["\(host)/\(pid)"] = worker
        }
        return QueueStatus(
            at: ProcessingLogEvent.timestamp(), counts: counts, running: running, completedPerTenMinutes: completed,
            failedPerTenMinutes: failed, failures: failures,
            workers: workers.values.sorted {
                ($0.lastSeenSeconds, $0.host, $0.pid) < ($1.lastSeenSeconds, $1.host, $1.pid)
            }, uploaders: uploaders, paused: try hasTable(session, tables.paused) ? pausedTypes(session) : [])
    }
}
