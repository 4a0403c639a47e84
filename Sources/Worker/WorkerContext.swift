public import Logging
public import Observability
public import Queue
public import Storage

/// What every part of a worker works with, made once by whoever owns the worker (the service, or a
/// one-shot command) and handed down whole: the settings, the statements and where they go,
/// storage, who this worker is, its log and its metrics.
public struct WorkerContext: Sendable {
    public let configuration: Configuration
    public let store: JobStore
    public let database: any PostgresClient
    public let storage: any Storage
    public let identity: WorkerIdentity
    public let logger: Logger
    public let metrics: WorkerMetrics

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
    }

    /// The same worker with its statements sent to `database` (a run's own connection).
    func sending(to database: any PostgresClient) -> WorkerContext {
        WorkerContext(
            configuration: configuration, database: database, storage: storage, logger: logger, identity: identity,
            metrics: metrics)
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
