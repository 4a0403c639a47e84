import Foundation
public import Logging
public import Observability
public import Queue
public import Storage

/// What every part of a worker works with, made once by whoever owns the worker (the service, or a
/// one-shot command) and handed down whole: the settings, the statements and where they go,
/// storage, who this worker is and what its runs hold, its log and its metrics.
public struct WorkerContext: Sendable {
    public let configuration: Configuration
    public let store: JobStore
    public private(set) var database: any PostgresClient
    public let storage: any Storage
    public let identity: WorkerIdentity
    /// Its metadata names what a part works on (a run's job, a piece).
    public var logger: Logger
    public let metrics: WorkerMetrics
    /// The claims this worker's runs hold right now.
    let running: RunningClaims

    public init(
        configuration: Configuration, database: any PostgresClient, storage: any Storage, logger: Logger,
        identity: WorkerIdentity = .current, metrics: WorkerMetrics = WorkerMetrics()
    ) {
        self.configuration = configuration
        self.store = JobStore(tables: configuration.tables)
        self.database = database
        self.storage = storage
        self.identity = identity
        self.logger = logger
        self.metrics = metrics
        self.running = RunningClaims()
    }

    /// The same worker with its statements sent to `database` (a run's own connection).
    func sending(to database: any PostgresClient) -> WorkerContext {
        var context = self
        context.database = database
        return context
    }
}

/// A part of the worker that works with its `WorkerContext`: its members read as the part's own.
protocol WorkingWithContext {
    var context: WorkerContext { get }
}

extension WorkingWithContext {
    var configuration: Configuration { context.configuration }
    var store: JobStore { context.store }
    var database: any PostgresClient { context.database }
    var storage: any Storage { context.storage }
    var identity: WorkerIdentity { context.identity }
    var logger: Logger { context.logger }
    var metrics: WorkerMetrics { context.metrics }
}

/// The claims this worker's runs hold right now: a job's (its id and token) and a piece's (its
/// token). A worker never takes its own running work away, however late a run's heartbeat on a
/// starved host (the rescue of stale jobs and the claim of stale pieces spare these); other workers
/// still take it by the heartbeat alone.
final class RunningClaims: @unchecked Sendable {
    // @unchecked: both sets are only touched under `lock`.
    private let lock = NSLock()
    private var jobClaims: Set<JobClaim> = []
    private var pieceTokens: Set<String> = []

    var jobs: [JobClaim] { lock.withLock { Array(jobClaims) } }
    var pieces: [String] { lock.withLock { Array(pieceTokens) } }

    /// Runs `body` with `claim` recorded as held.
    func holding<T>(_ claim: JobClaim, _ body: () async -> T) async -> T {
        lock.withLock { _ = jobClaims.insert(claim) }
        defer { lock.withLock { _ = jobClaims.remove(claim) } }
        return await body()
    }

    /// Runs `body` with the piece claim `token` recorded as held.
    func holding<T>(piece token: String, _ body: () async -> T) async -> T {
        lock.withLock { _ = pieceTokens.insert(token) }
        defer { lock.withLock { _ = pieceTokens.remove(token) } }
        return await body()
    }
}
