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
    /// The inputs of other workers' long videos, shared by the pieces taken here.
    let pieceInputs: PieceInputs

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
        self.pieceInputs = PieceInputs()
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
/// still take it by the heartbeat alone. It also knows the long videos this worker coordinates,
/// so that every piece of them encoded on this host, in any slot, reads the coordinator's copy of
/// the input and leaves its result in the join's folder (`LocalPieces`), instead of a round trip
/// through storage each.
final class RunningClaims: @unchecked Sendable {
    // @unchecked: every stored property is only touched under `lock`.
    private let lock = NSLock()
    private var jobClaims: Set<JobClaim> = []
    private var pieceTokens: Set<String> = []
    private var coordinated: [JobClaim: LocalPieces] = [:]

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

    /// Runs `body` (a coordinator's rounds, up to the join) with `local` lent to the pieces of
    /// `claim`'s run this worker encodes.
    func coordinating<T>(_ claim: JobClaim, _ local: LocalPieces, _ body: () async throws -> T) async rethrows -> T {
        lock.withLock { coordinated[claim] = local }
        defer { _ = lock.withLock { coordinated.removeValue(forKey: claim) } }
        return try await body()
    }

    /// What the coordinator of `claim`'s run lends, while it coordinates on this worker.
    func localPieces(of claim: JobClaim) -> LocalPieces? {
        lock.withLock { coordinated[claim] }
    }

    /// Runs `keep` (which moves a stored piece into the join's folder) only while `claim`'s run
    /// still coordinates here: once its rounds have ended, the join lists what its folder holds
    /// and fetches the rest, so nothing may arrive there meanwhile. A failed move is no error.
    func keep(for claim: JobClaim, _ keep: (LocalPieces) throws -> Void) {
        lock.withLock {
            guard let local = coordinated[claim] else { return }
            try? keep(local)
        }
    }
}

/// What the run coordinating a long video holds on its host: its copy of the input, and the
/// folder beside it the join reads the pieces from.
struct LocalPieces: Sendable {
    let input: URL
    let folder: URL
}
