import Foundation
import Logging
import Queue
import TestSupport
import Testing

/// Inserts a job (and its upload and user) straight into the tables; returns the job id.
func insertJob(
    _ url: String, type: ProcessingType = .metadata, uploadStatus: String = "COMPLETED", key: String = "uploads/x.mp4"
) async throws -> Int {
    let connection = PostgresConnection(url: url, label: "insert", logger: .init(label: "test"))
    defer { Task { await connection.close() } }
    return try await connection.withSession("insert") { session in
        let ids = try JobStore().enqueue(
            session, userId: 1, storageKey: "\(key)-\(UUID().uuidString)", storageUrl: "file:///x", fileName: "x.mp4",
            mimeType: "video/mp4", fileSize: 10, processingType: type, qualityProfile: nil)
        try session.execute(
            "UPDATE file_upload SET \"status\" = $2::text::file_upload_status_enum WHERE \"id\" = $1",
            [String(ids.uploadId), uploadStatus])
        return ids.jobId
    }
}

@Suite("JobStore against PostgreSQL")
struct JobStoreTests {
    let store = JobStore()

    @Test func claimFlipsToProcessingAndLogs() async throws {
        let url = try await TestDatabase.create()
        let id = try await insertJob(url)
        let connection = PostgresConnection(url: url, label: "t", logger: .init(label: "test"))
        let job = try #require(
            try await connection.withSession("claim") {
                try JobStore().claim($0, retryBase: 0, uploadWait: 3600, host: "h", pid: 7)
            })
        #expect(job.id == id && job.attempt == 1 && job.processingType == .metadata && job.qualityProfile == .medium)
        let row = try #require(
            try await TestDatabase.query(
                url,
                "SELECT \"status\"::text AS s, \"startedAt\"::text AS t, \"processingLogs\"::text AS logs FROM video_processing WHERE id = $1",
                [String(id)]
            ).first)
        #expect(try row.text("s") == "PROCESSING")
        #expect(try row.text("t") == job.token)
        let logs = try #require(try row.text("logs"))
        #expect(logs.contains("\"claimed\"") && logs.contains("\"host\" : \"h\"") && logs.contains("\"pid\" : 7"))
        // Nothing else is runnable now.
        #expect(
            try await connection.withSession("claim") {
                try JobStore().claim($0, retryBase: 0, uploadWait: 3600, host: "h", pid: 7)
            } == nil)
        await connection.close()
    }

    /// A worker never rescues the claim it runs itself, however late its heartbeat; an earlier
    /// claim of the same job (another run, ended) is no reason to spare it.
    @Test func aWorkersOwnRunningClaimIsSpared() async throws {
        let url = try await TestDatabase.create()
        _ = try await insertJob(url)
        let store = self.store
        let connection = PostgresConnection(url: url, label: "worker", logger: .init(label: "test"))
        let claim = {
            try #require(
                try await connection.withSession("claim") {
                    try store.claim($0, retryBase: 0, uploadWait: 3600, host: "a", pid: 1)
                })
        }
        let rescue = { (sparing: [JobClaim]) in
            try await TestDatabase.query(url, "UPDATE video_processing SET \"updatedAt\" = now() - interval '1 hour'")
            return try await connection.withSession("rescue") {
                try store.rescueStale($0, staleAfter: 60, maxAttempts: 3, host: "a", pid: 1, sparing: sparing)
            }.map(\.id)
        }
        let first = try await claim()
        #expect(try await rescue([first.claim]).isEmpty)
        #expect(try await rescue([]) == [first.id])
        let second = try await claim()
        #expect(try await rescue([first.claim]) == [second.id])
        await connection.close()
    }

    /// The race the fencing token closes: a slow worker's late result after its job was rescued
    /// and claimed again writes nothing.
    @Test func lateResultOfARescuedRunWritesNothing() async throws {
        let url = try await TestDatabase.create()
        _ = try await insertJob(url)
        let store = self.store
        let slow = PostgresConnection(url: url, label: "slow", logger: .init(label: "test"))
        let first = try #require(
            try await slow.withSession("claim") {
                try store.claim($0, retryBase: 0, uploadWait: 3600, host: "a", pid: 1)
            })
        await slow.close()  // the slow worker's lock goes with its session
        try await TestDatabase.query(url, "UPDATE video_processing SET \"updatedAt\" = now() - interval '1 hour'")
        let rescuer = PostgresConnection(url: url, label: "rescuer", logger: .init(label: "test"))
        let rescued = try await rescuer.withSession("rescue") {
            try store.rescueStale($0, staleAfter: 60, maxAttempts: 3, host: "b", pid: 2)
        }
        #expect(rescued.map(\.status) == [.pending])
        let second = try #require(
            try await rescuer.withSession("claim") {
                try store.claim($0, retryBase: 0, uploadWait: 3600, host: "b", pid: 2)
            })
        #expect(second.token != first.token && second.attempt == 2)

        let late = JobStore.Completion<[String: String]>(
            columns: JobStore.OutputColumns(
                outputStorageKeys: ["video": "k"], outputUrls: ["video": "u"], outputMetadata: [String: String](),
                thumbnails: [String](), inputMetadata: [String: String](), uploadVideo: [String: String](),
                uploadVariants: [String: String](), posterUrl: "late"),
            outputTotalSize: 1, actualDurationSeconds: 1, estimatedDurationSeconds: nil,
            event: ProcessingLogEvent(event: "completed", attempt: 1, host: "a", pid: 1), reusable: nil)
        let lateWriter = PostgresConnection(url: url, label: "late", logger: .init(label: "test"))
        #expect(try await lateWriter.withSession("complete") { try store.complete($0, job: first, late) } == .fencedOff)
        #expect(
            try await lateWriter.withSession("beat") {
                try store.writeProgress($0, job: first, progress: 50, estimatedSeconds: nil)
            } == false)
        let row = try #require(
            try await TestDatabase.query(
                url,
                """
                SELECT vp."status"::text AS s, vp."outputUrls" AS o, vp."progress" AS p, fu."thumbnailUrl" AS t
                FROM video_processing vp JOIN file_upload fu ON fu.id = vp."fileUploadId"
                """
            ).first)
        #expect(try row.text("s") == "PROCESSING" && row.text("o") == nil && row.text("t") == nil)
        #expect(try row.decode("p", as: Int.self) == 0)
        // The current run still writes fine.
        #expect(
            try await rescuer.withSession("beat") {
                try store.writeProgress($0, job: second, progress: 40, estimatedSeconds: 9)
            })
        await lateWriter.close()
        await rescuer.close()
    }

    /// Liveness is the heartbeat alone (no session lock, so it holds through a transaction-mode
    /// pooler): a job whose last heartbeat is within the stale window stays, one past it is
    /// rescued, and the late worker's next heartbeat finds it fenced off.
    @Test func jobIsRescuedByItsHeartbeatAlone() async throws {
        let url = try await TestDatabase.create()
        _ = try await insertJob(url)
        let store = self.store
        let worker = PostgresConnection(url: url, label: "worker", logger: .init(label: "test"))
        let job = try #require(
            try await worker.withSession("claim") {
                try store.claim($0, retryBase: 0, uploadWait: 3600, host: "a", pid: 1)
            })
        let rescuer = PostgresConnection(url: url, label: "rescuer", logger: .init(label: "test"))
        let rescue = {
            try await rescuer.withSession("rescue") {
                try store.rescueStale($0, staleAfter: 60, maxAttempts: 3, host: "b", pid: 2)
            }.map(\.id)
        }
        try await TestDatabase.query(url, "UPDATE video_processing SET \"updatedAt\" = now() - interval '50 seconds'")
        #expect(try await worker.withSession("beat") { try store.heartbeat($0, job: job) })
        #expect(try await rescue().isEmpty, "a heartbeat now keeps the job")
        try await TestDatabase.query(url, "UPDATE video_processing SET \"updatedAt\" = now() - interval '61 seconds'")
        #expect(try await rescue() == [job.id])
        #expect(try await worker.withSession("beat") { try store.heartbeat($0, job: job) } == false)
        await worker.close()
        await rescuer.close()
    }

    @Test func retriesBackOffThenFail() async throws {
        let url = try await TestDatabase.create()
        let id = try await insertJob(url)
        let store = self.store
        let connection = PostgresConnection(url: url, label: "t", logger: .init(label: "test"))
        let event = ProcessingLogEvent(event: "retry", attempt: 1, host: "h", pid: 1)
        for attempt in 1...3 {
            let job = try #require(
                try await connection.withSession("claim") {
                    try store.claim($0, retryBase: 0, uploadWait: 3600, host: "h", pid: 1)
                }, "attempt \(attempt)")
            let outcome = try await connection.withSession("fail") {
                try store.fail(
                    $0, job: job, errorMessage: "storage: boom",
                    retry: FailureCode.storage.isRetried(afterAttempt: job.attempt, of: 3), event: event)
            }
            #expect(outcome == (attempt < 3 ? .retrying : .failed))
        }
        let row = try #require(
            try await TestDatabase.query(
                url,
                "SELECT \"status\"::text AS s, \"retryCount\" AS r, \"errorMessage\" AS e FROM video_processing WHERE id = $1",
                [String(id)]
            ).first)
        #expect(try row.text("s") == "FAILED" && row.decode("r", as: Int.self) == 2 && row.text("e") == "storage: boom")
        // With a real backoff, a retried job is not runnable at once.
        let fresh = try await insertJob(url)
        let job = try #require(
            try await connection.withSession("claim") {
                try store.claim($0, retryBase: 0, uploadWait: 3600, host: "h", pid: 1)
            })
        #expect(job.id == fresh)
        _ = try await connection.withSession("fail") {
            try store.fail($0, job: job, errorMessage: "timeout: slow", retry: true, event: event)
        }
        #expect(
            try await connection.withSession("claim") {
                try store.claim($0, retryBase: 3600, uploadWait: 3600, host: "h", pid: 1)
            } == nil)
        await connection.close()
    }

    @Test func jobsWaitForTheirUpload() async throws {
        let url = try await TestDatabase.create()
        _ = try await insertJob(url, uploadStatus: "UPLOADING")
        let store = self.store
        let connection = PostgresConnection(url: url, label: "t", logger: .init(label: "test"))
        #expect(
            try await connection.withSession("claim") {
                try store.claim($0, retryBase: 0, uploadWait: 3600, host: "h", pid: 1)
            } == nil)
        #expect(
            try await connection.withSession("idle") { try store.isIdle($0, uploadWait: 3600, hasPausedTable: true) })
        // Past the wait, it is claimed (to fail as input_missing).
        #expect(
            try await connection.withSession("claim") {
                try store.claim($0, retryBase: 0, uploadWait: 0, host: "h", pid: 1)
            } != nil)
        await connection.close()
    }

    @Test func tableNamesMustBeIdentifiers() throws {
        #expect(throws: PostgresError.self) { try TableNames(videoProcessing: "video_processing; DROP TABLE x") }
        #expect(
            try TableNames(videoProcessing: "app.video_processing").videoProcessing == "\"app\".\"video_processing\"")
    }
}

@Suite("Queue fairness")
struct QueueFairnessTests {
    /// A retried job queues as if it had arrived `retryQueuePenalty` later per retry: fresh uploads
    /// go first, but not forever.
    @Test func freshUploadsGoBeforeRetries() async throws {
        let url = try await TestDatabase.create()
        let retried = try await insertJob(url)
        let fresh = try await insertJob(url)
        func age(_ id: Int, minutes: Int, retries: Int) async throws {
            _ = try await TestDatabase.query(
                url,
                """
                UPDATE video_processing SET "retryCount" = $2::int,
                    "createdAt" = (now() AT TIME ZONE 'utc') - make_interval(mins => $3::int),
                    "updatedAt" = (now() AT TIME ZONE 'utc') - make_interval(mins => $3::int)
                WHERE id = $1 RETURNING id
                """, [String(id), String(retries), String(minutes)])
        }
        func claimed() async throws -> Int? {
            let connection = PostgresConnection(url: url, label: "t", logger: .init(label: "test"))
            defer { Task { await connection.close() } }
            return try await connection.withSession("claim") {
                try JobStore().claim($0, retryBase: 0, uploadWait: 3600, host: "h", pid: 7)?.id
            }
        }
        // Retried once, five minutes older than a fresh upload: the fresh one goes first.
        try await age(retried, minutes: 6, retries: 1)
        try await age(fresh, minutes: 1, retries: 0)
        #expect(try await claimed() == fresh)
        #expect(try await claimed() == retried)

        // Retried once but waiting longer than the penalty beyond a fresh one: its turn.
        let older = try await insertJob(url)
        let newer = try await insertJob(url)
        try await age(older, minutes: 12 + JobStore.retryQueuePenalty / 60, retries: 1)
        try await age(newer, minutes: 1, retries: 0)
        #expect(try await claimed() == older)
    }
}

/// Counts warnings (each "database unreachable, retrying" is one).
final class WarningCount: LogHandler, @unchecked Sendable {
    // @unchecked: `seen` is only touched under `lock`.
    private let lock = NSLock()
    private var seen = 0
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .warning

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) { lock.withLock { seen += 1 } }
    var count: Int { lock.withLock { seen } }
}

@Suite("Connection strings")
struct ConnectionStringRules {
    static let malformed = [
        "postgresql://u:s3cretpw@[::1/db", "postgresql://u:s3cr%zzpw@h/db", "host=h password=s3cretpw dbname",
        "postgresql://u:s3cretpw@h:5432:9/db?sslmode=bad",
    ]

    @Test(arguments: malformed)
    func malformedURLFailsAtOnceWithoutItsPassword(_ url: String) async throws {
        #expect(ConnectionString.problem(url).map { !$0.contains("s3cr") } ?? true)
        let warnings = WarningCount()
        let connection = PostgresConnection(url: url, label: "t", logger: Logger(label: "test") { _ in warnings })
        let error = try await #require(throws: PostgresError.self) {
            try await connection.withSession("connect") { _ in }
        }
        #expect(error.kind == .invalidURL)
        #expect(!String(reflecting: error).contains("s3cr"), "\(String(reflecting: error))")
        #expect(warnings.count == 0, "a parse error is not worth retrying")
    }

    @Test func secretsAndRedaction() {
        #expect(ConnectionString.secrets(in: "postgresql://bob:pw@db/app") == ["pw"])
        #expect(ConnectionString.secrets(in: "host=db password='a b' user=x") == ["a b"])
        #expect(ConnectionString.secrets(in: "postgresql://bob:p@ss@db/app") == ["p@ss"])
        #expect(ConnectionString.redacted("postgresql://bob:p@ss@db/app") == "postgresql://bob:***@db/app")
        #expect(ConnectionString.redacted("host=db password=secret") == "host=db password=***")
        #expect(ConnectionString.problem("postgresql://bob:pw@db/app") == nil)
    }
}

@Suite("The job's vocabulary at the claim")
struct ClaimVocabularyTests {
    /// An app that added a processing type media-worker does not know yet: that job fails with
    /// `unsupported` at the claim, and the claim goes on to the next job instead of crashing or
    /// claiming it again and again.
    @Test func unknownTypeFailsThatJobAndTheClaimGoesOn() async throws {
        let url = try await TestDatabase.create()
        _ = try await TestDatabase.query(
            url, "ALTER TYPE video_processing_processingtype_enum ADD VALUE IF NOT EXISTS 'TRANSCRIBE'")
        let unknown = try await insertJob(url)
        let known = try await insertJob(url)
        _ = try await TestDatabase.query(
            url,
            "UPDATE video_processing SET \"processingType\" = 'TRANSCRIBE' WHERE id = $1 RETURNING id",
            [String(unknown)])
        let connection = PostgresConnection(url: url, label: "t", logger: .init(label: "test"))
        defer { Task { await connection.close() } }
        let claimed = try await connection.withSession("claim") {
            try JobStore().claim($0, retryBase: 0, uploadWait: 3600, host: "h", pid: 7)
        }
        #expect(claimed?.id == known && claimed?.processingType == .metadata)
        let row = try #require(
            try await TestDatabase.query(
                url, "SELECT \"status\"::text AS s, \"errorMessage\" AS e FROM video_processing WHERE id = $1",
                [String(unknown)]
            ).first)
        #expect(try row.require("s", as: String.self) == JobStatus.failed.rawValue)
        let message: String = try row.require("e")
        #expect(message.hasPrefix("unsupported: processingType \"TRANSCRIBE\""), "\(message)")
    }
}
