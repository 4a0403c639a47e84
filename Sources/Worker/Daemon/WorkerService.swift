import Foundation
public import Logging
public import Observability
public import Queue
public import ServiceLifecycle
public import Storage

/// The daemon (`media-worker serve`): claims jobs with `FOR UPDATE SKIP LOCKED` into a fixed
/// number of slots, wakes on `LISTEN` or every poll interval, rescues abandoned jobs, and on a
/// graceful shutdown stops claiming, lets running jobs finish within the grace period, then stops
/// the rest and puts them back to PENDING.
///
/// The service composes its duties, each a small type of its own, and runs each as a task: the
/// start-up checks (`StartupChecks`), the claimer (`Claimer`, woken through an `AsyncStream` by a
/// notification, a freed slot or the poll interval), the listener (`JobListener`), the rescuer
/// (`Rescuer`), the queue-depth sampler (`DepthSampler`), the storage sweep (`StorageSweep`) and the
/// systemd reporter (`SystemdReporter`: `READY=1` once the database and storage answered,
/// `STATUS=`, `WATCHDOG=1` only while the database answers, `STOPPING=1`). `events` tells an
/// observer (the tests) what happens.
public final class WorkerService: Service, Sendable {
    let configuration: Configuration
    let logger: Logger
    let notifier: SystemdNotifier
    let state = ServiceState()
    /// The connections every statement but `LISTEN` and the reuse locks shares (see
    /// `Configuration.connectionBudget`); `/status` reads through it too.
    public let database: PostgresPool
    let reuseLocks: ReuseLocks?
    let startup: StartupChecks
    let claimer: Claimer
    let rescuer: Rescuer
    let sampler: DepthSampler
    let reporter: SystemdReporter
    let sweep: StorageSweep
    /// The inputs of other workers' long videos its pieces share; removed when it stops.
    let pieceInputs: PieceInputs
    /// What happened, as it happens.
    public let events: AsyncStream<WorkerEvent>
    private let eventSink: AsyncStream<WorkerEvent>.Continuation
    /// Why the claimer should look for work now.
    let wake: AsyncStream<WakeUp>.Continuation

    enum WakeUp { case notified, slotFreed, pollInterval, stopping }

    public init(
        configuration: Configuration, storage: any Storage, logger: Logger, untilIdle: Bool = false,
        metrics: WorkerMetrics = WorkerMetrics(), notifier: SystemdNotifier = SystemdNotifier(environment: [:])
    ) {
        self.configuration = configuration
        self.logger = logger
        self.notifier = notifier
        let (state, identity) = (state, WorkerIdentity.current)
        let budget = configuration.connectionBudget
        let database = PostgresPool(size: budget.pool) {
            configuration.connection(label: "pool-\($0 + 1)", logger: logger)
        }
        self.database = database
        // Every statement of the daemon and its runs: owned here, handed down.
        let context = WorkerContext(
            configuration: configuration, database: database, storage: storage, logger: logger, identity: identity,
            metrics: metrics)
        let reuseLocks =
            budget.locks
            ? ReuseLocks(
                connection: configuration.connection(label: "locks", logger: logger), store: context.store) : nil
        self.reuseLocks = reuseLocks
        (events, eventSink) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1000))
        let (wakeUps, wake) = AsyncStream.makeStream(of: WakeUp.self, bufferingPolicy: .bufferingNewest(1))
        self.wake = wake
        startup = StartupChecks(context: context, state: state, notifier: notifier, untilIdle: untilIdle)
        claimer = Claimer(
            context: context, state: state,
            runner: JobRunner(
                context: context, reuseLocks: reuseLocks, onFailure: { state.failed(job: $0, error: $1) },
                piecesEnabled: { state.hasPiecesTable }),
            untilIdle: untilIdle, events: eventSink, wake: wake, wakeUps: wakeUps)
        rescuer = Rescuer(context: context, state: state, wake: wake)
        sampler = DepthSampler(context: context)
        reporter = SystemdReporter(
            notifier: notifier, state: state, metrics: metrics,
            healthWindow: .seconds(max(configuration.staleAfter, 3 * configuration.pollInterval)))
        sweep = StorageSweep(context: context)
        pieceInputs = context.pieceInputs
    }

    /// For `/healthz` and `/readyz`: unhealthy once the database went unanswered for the
    /// stale-after time, after which other workers rescue this one's jobs anyway.
    public func health() -> Health { state.health(window: reporter.healthWindow) }

    public func run() async throws {
        // LISTEN needs a session of its own: the database's, unless a transaction-mode pooler is
        // in between (then a direct LISTEN_URL, or polling alone).
        let listenURL = configuration.poolMode == .session ? configuration.databaseURL : configuration.listenURL
        let listener = listenURL.map {
            PostgresConnection(url: $0, label: "listener", logger: logger, limits: configuration.statementLimits)
        }
        logger.info("worker starting", metadata: ["settings": "\(configuration.redactedSummary)"])
        defer { eventSink.finish() }
        // What a daemon killed on this host left behind (inputs included) goes before any new work.
        let abandoned = WorkFolder.removeAbandoned(
            in: configuration.temporaryDirectory, staleAfter: configuration.jobTimeout)
        if abandoned > 0 {
            logger.notice(
                "removed the job folders of a worker that died on this host",
                metadata: ["folders": "\(abandoned)", "in": "\(configuration.temporaryDirectory)"])
        }
        try await withGracefulShutdownHandler {
            try await startup.waitForDependencies()
            guard !state.isDraining else { return }
            state.becameReady()
            notifier.ready(status: state.changedStatusLine(now: .now) ?? state.statusLine)
            logger.info("worker ready: database and storage answered")
            let sweeps = await startup.lookForOwnTables()
            eventSink.yield(.ready)
            let (claimer, rescuer, sampler, reporter, sweep, wake) = (
                claimer, rescuer, sampler, reporter, sweep, wake
            )
            await withDiscardingTaskGroup { group in
                if let listener {
                    group.addTask { await JobListener(connection: listener, wake: wake).run() }
                } else {
                    self.logger.info(
                        "no LISTEN through a transaction-mode pooler: polling for jobs",
                        metadata: ["every": "\(self.configuration.pollInterval) s"])
                }
                let interval = max(0.1, configuration.pollInterval)
                group.addTask {
                    // Workers started together (a deploy) would poll in step; a random phase spreads
                    // them, so with N workers polling every T a new job waits about T / 2N.
                    try? await Task.sleep(for: .seconds(Double.random(in: 0..<interval)))
                    await every(.seconds(interval)) { wake.yield(.pollInterval) }
                }
                group.addTask { await every(rescuer.interval) { await rescuer.rescue() } }
                group.addTask { await every(sampler.interval) { await sampler.sample() } }
                if sweeps {
                    // Asking for the lease is one cheap UPDATE; the lease says whether a sweep is due.
                    let ask = min(30, configuration.sweepInterval)
                    group.addTask { await every(.seconds(ask)) { await sweep.runIfDue() } }
                }
                group.addTask { await every(reporter.interval) { reporter.report() } }
                await claimer.claimUntilStopped(group: &group)
                await claimer.drainRunningJobs()
                group.cancelAll()
            }
            await pieceInputs.removeAll()
        } onGracefulShutdown: {
            self.logger.info("stopping: no new jobs; running ones get the grace period")
            self.state.drain()
            self.wake.yield(.stopping)
            // A database that is away now is not waited for: what a stop cannot record, the
            // rescue of stale jobs and the fencing token take care of.
            self.database.stopRetrying()
            self.reuseLocks?.stopRetrying()
            listener?.stopRetrying()
            // Grace for the jobs, then time to stop their children and release them.
            self.notifier.stopping(
                status: "stopping: \(self.state.running) running jobs get \(Int(self.configuration.shutdownGrace)) s",
                extend: .seconds(self.configuration.shutdownGrace + 30))
        }
        await database.close()
        await reuseLocks?.close()
        await listener?.close()
        logger.info(
            "worker stopped", metadata: ["ended": "\(state.endings.map { "\($0.key.rawValue)=\($0.value)" }.sorted())"])
        eventSink.yield(.stopped(state.endings))
    }
}

/// Runs `body` now and then every `interval`, until the task is cancelled.
private func every(_ interval: Duration, _ body: @Sendable () async -> Void) async {
    while !Task.isCancelled {
        await body()
        try? await Task.sleep(for: interval)
    }
}
