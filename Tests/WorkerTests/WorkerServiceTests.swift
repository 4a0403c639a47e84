import Foundation
import Logging
import Media
import Queue
import ServiceLifecycle
import Storage
import TestSupport
import Testing

@testable import Worker

/// A worker in this process, on a fresh database and storage folder; its job children are the
/// built `media-worker` binary.
struct InProcessWorker {
    let databaseURL: String
    var configuration: Configuration
    let logger = Logger(label: "test")

    /// `route`: how the worker reaches the database (the tests read it directly).
    static func make(_ settings: [String: String] = [:], route: Route = .direct) async throws -> InProcessWorker {
        let databaseURL = try await TestDatabase.create()
        let storage = try Fixtures.temporaryDirectory("store")
        var configuration = try Configuration(
            environment: [
                "DATABASE_URL": try await route.url(for: databaseURL), "MEDIA_STORAGE_URL": storage.absoluteString,
                "MEDIA_WORKER_POOL_MODE": route == .pooled ? "transaction" : "session",
                "MEDIA_WORKER_POLL_INTERVAL": "0.2", "MEDIA_WORKER_RETRY_BASE": "0", "MEDIA_WORKER_CONCURRENCY": "1",
                "MEDIA_WORKER_TMPDIR": try Fixtures.temporaryDirectory("jobs").path,
            ].merging(settings) { $1 })
        configuration.childExecutable = Fixtures.executable
        return InProcessWorker(databaseURL: databaseURL, configuration: configuration)
    }

    func enqueue(
        _ fixture: String, type: ProcessingType, profile: QualityProfile? = nil, user: Int = 1
    ) async throws -> Int {
        try await OneShotJobs(configuration: configuration, logger: logger)
            .enqueue(URL(fileURLWithPath: Fixtures.path(fixture)), type: type, profile: profile, userId: user)
    }

    func row(_ id: Int) async throws -> PostgresRow {
        try #require(
            try await TestDatabase.query(
                databaseURL,
                """
                SELECT "status"::text AS status, "retryCount" AS retries, "errorMessage" AS error,
                    "outputStorageKeys" AS keys, "processingLogs"::text AS logs
                FROM video_processing WHERE id = $1
                """, [String(id)]
            ).first)
    }

    /// Runs a `WorkerService` in a `ServiceGroup` (as `serve` does) on `storage` (by default the
    /// configured one), handing `body` the service and a way to trigger the graceful shutdown
    /// SIGTERM starts; returns once the service stopped.
    func serve(
        storage: (any Storage)? = nil,
        _ body: (WorkerService, _ shutdown: @escaping @Sendable () async -> Void) async throws -> Void
    ) async throws {
        let service = WorkerService(
            configuration: configuration, storage: try storage ?? configuration.makeStorage(), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [service], logger: logger))
        let running = Task { try await group.run() }
        try await body(service) { await group.triggerGracefulShutdown() }
        await group.triggerGracefulShutdown()
        try await running.value
    }
}

extension AsyncStream where Element == WorkerEvent {
    /// The first event `match` accepts (nil if the stream ended first).
    func first(_ match: (WorkerEvent) -> Bool) async -> WorkerEvent? {
        for await event in self where match(event) { return event }
        return nil
    }
}

extension AsyncStream<WorkerEvent>.Iterator {
    /// Reads events until `match` accepts one (nil if the stream ended first).
    mutating func next(where match: (WorkerEvent) -> Bool) async -> WorkerEvent? {
        while let event = await next() {
            if match(event) { return event }
        }
        return nil
    }

    /// Reads events until job `id`'s run ended; how it ended.
    mutating func ending(of id: Int) async -> JobRunner.Ending? {
        guard
            case .finished(_, let ending) = await next(where: { if case .finished(id, _) = $0 { true } else { false } })
        else { return nil }
        return ending
    }
}

/// A JSON column read back as text, as `T` (nil when NULL or of another shape).
func decodedJSON<T>(_ text: String?, as type: T.Type) throws -> T? {
    try JSONSerialization.jsonObject(with: Data((text ?? "null").utf8), options: .fragmentsAllowed) as? T
}

@Suite("WorkerService and JobRunner in this process", .heavy)
struct WorkerServiceTests {
    @Test func claimsAndCompletes() async throws {
        let worker = try await InProcessWorker.make()
        let id = try await worker.enqueue("portrait_rot90.mp4", type: .thumbnail)
        try await worker.serve { service, _ in
            let finished = await service.events.first { if case .finished = $0 { true } else { false } }
            #expect(finished == .finished(id, .completed))
        }
        let row = try await worker.row(id)
        #expect(try row.text("status") == JobStatus.completed.rawValue)
        #expect(endsInRunKey(storageKeys(try row.text("keys"))["poster"], job: id, file: "poster.jpg"))
    }

    /// The app cancels a running transcode: the next heartbeat is fenced off, the child killed,
    /// and the row left as the app set it.
    @Test func appCancelsARunningJob() async throws {
        let worker = try await InProcessWorker.make()
        let id = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .compression)
        try await worker.serve { service, _ in
            var events = service.events.makeAsyncIterator()
            _ = await events.next { if case .run(id, .progress(let fraction)) = $0 { fraction > 0.05 } else { false } }
            try await TestDatabase.query(
                worker.databaseURL, "UPDATE video_processing SET \"status\" = 'CANCELLED' WHERE id = $1", [String(id)])
            #expect(await events.ending(of: id) == .cancelled)
        }
        let row = try await worker.row(id)
        #expect(try row.text("status") == JobStatus.cancelled.rawValue)
        #expect(try row.decode("keys", as: String.self) == nil)
    }

    /// SIGTERM (the graceful shutdown) while a transcode runs, with a grace period too short for
    /// it: the job is stopped and released to PENDING without counting an attempt. If the job had
    /// already ended when the shutdown came, its ending would be `completed` and this fails.
    @Test func shutdownDuringATranscodeReleasesTheJob() async throws {
        let worker = try await InProcessWorker.make(["MEDIA_WORKER_SHUTDOWN_GRACE": "0.2"])
        let id = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .compression)
        try await worker.serve { service, shutdown in
            var events = service.events.makeAsyncIterator()
            _ = await events.next {
                if case .run(id, .progress(let fraction)) = $0 { fraction > 0.05 && fraction < 0.5 } else { false }
            }
            await shutdown()
            #expect(await events.ending(of: id) == .released)
        }
        let row = try await worker.row(id)
        #expect(try row.text("status") == JobStatus.pending.rawValue)
        #expect(try row.decode("retries", as: Int.self) == 0)
        #expect((try row.text("logs") ?? "").contains(#""event":"released""#))
    }

    /// A job left PROCESSING by a worker that died (no heartbeat, no lock) is rescued and done.
    @Test func rescuesAnAbandonedJob() async throws {
        let worker = try await InProcessWorker.make(["MEDIA_WORKER_STALE_AFTER": "2"])
        let id = try await worker.enqueue("no_audio.mp4", type: .metadata)
        try await TestDatabase.query(
            worker.databaseURL,
            """
            UPDATE video_processing SET "status" = 'PROCESSING', "startedAt" = now(),
                "updatedAt" = (now() AT TIME ZONE 'utc') - interval '1 hour' WHERE id = $1
            """, [String(id)])
        try await worker.serve { service, _ in
            let finished = await service.events.first { if case .finished = $0 { true } else { false } }
            #expect(finished == .finished(id, .completed))
        }
        let row = try await worker.row(id)
        #expect(try row.text("status") == JobStatus.completed.rawValue)
        #expect(try row.decode("retries", as: Int.self) == 1)
        #expect((try row.text("logs") ?? "").contains(#""event":"rescued""#))
    }

    /// JobRunner alone on a claimed job: the child runs, the outputs land, the row says so.
    @Test func runnerRunsAClaimedJob() async throws {
        let worker = try await InProcessWorker.make()
        let id = try await worker.enqueue("vp9_opus.webm", type: .fullProcessing)
        let connection = PostgresConnection(url: worker.databaseURL, label: "t", logger: worker.logger)
        let job = try #require(
            try await connection.withSession("claim") {
                try JobStore().claim($0, retryBase: 0, uploadWait: 3600, host: "h", pid: 1, jobId: id)
            })
        await connection.close()
        let runner = JobRunner(
            configuration: worker.configuration, storage: try worker.configuration.makeStorage(),
            logger: worker.logger)
        let fractions = FractionLog()
        #expect(
            await runner.run(job, threads: 2) { event in
                if case .progress(let fraction) = event { fractions.append(fraction) }
            } == .completed)
        #expect(fractions.all.last == 1 && fractions.all == fractions.all.sorted())
        let row = try await worker.row(id)
        #expect(try row.text("status") == JobStatus.completed.rawValue)
        for role in OutputRole.allCases where !role.isEfficientVariant && !role.isStoryboard {
            #expect(endsInRunKey(storageKeys(try row.text("keys"))[role.rawValue], job: id, file: role.fileName))
        }
    }
}

/// Progress values, from the child's reader thread.
final class FractionLog: @unchecked Sendable {
    // @unchecked: `values` is only touched under `lock`.
    private let lock = NSLock()
    private var values: [Double] = []

    func append(_ value: Double) { lock.withLock { values.append(value) } }
    var all: [Double] { lock.withLock { values } }
}

/// The outputs of a FULL_PROCESSING job under MEDIUM with the default `free` variant: every role
/// but the efficient variants, and `video_hevc` too when the upload is HEVC that fits (a copy).
func fullProcessingRoles(hevcUpload: Bool) -> [OutputRole] {
    OutputRole.allCases.filter { !$0.isStoryboard && (!$0.isEfficientVariant || (hevcUpload && $0 == .videoHevc)) }
}
