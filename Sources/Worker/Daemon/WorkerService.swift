import Foundation
import JobChild
public import Logging
import Media
public import Observability
public import Queue
public import ServiceLifecycle
public import Storage

/// The daemon (`media-worker serve`): claims jobs with `FOR UPDATE SKIP LOCKED` into a fixed
/// number of slots, wakes on `LISTEN` or every poll interval, rescues abandoned jobs, and on a
/// graceful shutdown stops claiming, lets running jobs finish within the grace period, then stops
/// the rest and puts them back to PENDING.
///
/// Each duty is its own task: the claimer (woken through an `AsyncStream` by a notification, a
/// freed slot or the poll interval), the listener, the rescuer, the queue-depth sampler and the
/// systemd reporter (`READY=1` once the database and storage answered, `STATUS=`, `WATCHDOG=1` only
/// while the database answers, `STOPPING=1`). `events` tells an observer (the tests) what happens.
public final class WorkerService: Service, Sendable {
    let configuration: Configuration
    let runner: JobRunner
    let variants: VariantRunner
    let pieces: PieceRunner
    let sweep: StorageSweep
    let storage: any Storage
    let logger: Logger
    let untilIdle: Bool
    let metrics: WorkerMetrics
    let notifier: SystemdNotifier
    let state = ServiceState()
    /// Every statement of the daemon and its runs, and who this worker is: owned here, handed down.
    let store: JobStore
    let identity = WorkerIdentity.current
    /// The connections every statement but `LISTEN` and the reuse locks shares (see
    /// `Configuration.connectionBudget`); `/status` reads through it too.
    public let database: PostgresPool
    let reuseLocks: ReuseLocks?
    /// What happened, as it happens.
    public let events: AsyncStream<WorkerEvent>
    private let eventSink: AsyncStream<WorkerEvent>.Continuation
    /// Why the claimer should look for work now.
    private let wakeUps: AsyncStream<WakeUp>
    let wake: AsyncStream<WakeUp>.Continuation

    enum WakeUp { case notified, slotFreed, pollInterval, stopping }

    public init(
        configuration: Configuration, storage: any Storage, logger: Logger, untilIdle: Bool = false,
        metrics: WorkerMetrics = WorkerMetrics(), notifier: SystemdNotifier = SystemdNotifier(environment: [:])
    ) {
        self.configuration = configuration
        let state = state
        let budget = configuration.connectionBudget
        let database = PostgresPool(size: budget.pool) {
            configuration.connection(label: "pool-\($0 + 1)", logger: logger)
        }
        self.database = database
        let store = JobStore(tables: configuration.tables)
        self.store = store
        reuseLocks =
            budget.locks
            ? ReuseLocks(connection: configuration.connection(label: "locks", logger: logger), store: store) : nil
        self.runner = JobRunner(
            configuration: configuration, store: store, database: database, storage: storage, identity: identity,
            logger: logger, metrics: metrics, reuseLocks: reuseLocks, onFailure: { state.failed(job: $0, error: $1) },
            piecesEnabled: { state.hasPiecesTable })
        pieces = PieceRunner(
            configuration: configuration, store: store, database: database, storage: storage, logger: logger)
        variants = VariantRunner(
            configuration: configuration, store: store, database: database, storage: storage, logger: logger)
        sweep = StorageSweep(
            configuration: configuration, database: database, storage: storage, logger: logger, identity: identity)
        self.storage = storage
        self.logger = logger
        self.untilIdle = untilIdle
        self.metrics = metrics
        self.notifier = notifier
        (events, eventSink) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1000))
        (wakeUps, wake) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// How long the database may go unanswered before the worker counts as unhealthy (no more
    /// watchdog pings, `/healthz` 503): the stale-after time, after which other workers rescue
    /// this one's jobs anyway.
    var healthWindow: Duration { .seconds(max(configuration.staleAfter, 3 * configuration.pollInterval)) }

    /// For `/healthz` and `/readyz`.
    public func health() -> Health { state.health(window: healthWindow) }

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
            try await self.waitForDependencies()
            guard !state.isDraining else { return }
            state.becameReady()
            notifier.ready(status: state.changedStatusLine(now: .now) ?? state.statusLine)
            logger.info("worker ready: database and storage answered")
            let sweeps = await self.lookForOwnTables()
            eventSink.yield(.ready)
            await withDiscardingTaskGroup { group in
                if let listener {
                    group.addTask { await self.listen(listener) }
                } else {
                    self.logger.info(
                        "no LISTEN through a transaction-mode pooler: polling for jobs",
                        metadata: ["every": "\(self.configuration.pollInterval) s"])
                }
                group.addTask {
                    // Workers started together (a deploy) would poll in step; a random phase spreads
                    // them, so with N workers polling every T a new job waits about T / 2N.
                    let interval = max(0.1, self.configuration.pollInterval)
                    try? await Task.sleep(for: .seconds(Double.random(in: 0..<interval)))
                    await self.every(.seconds(interval)) { self.wake.yield(.pollInterval) }
                }
                group.addTask {
                    await self.every(.seconds(max(1, self.configuration.staleAfter / 4))) { await self.rescue() }
                }
                group.addTask { await self.every(.seconds(5)) { await self.sampleDepth() } }
                if sweeps {
                    // Asking for the lease is one cheap UPDATE; the lease says whether a sweep is due.
                    let ask = min(30, self.configuration.sweepInterval)
                    group.addTask { await self.every(.seconds(ask)) { await self.sweep.runIfDue() } }
                }
                group.addTask { await self.every(.seconds(1)) { self.reportToSystemd() } }
                await self.claimUntilStopped(group: &group)
                await self.drainRunningJobs()
                group.cancelAll()
            }
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

    /// Claims into free slots whenever woken, until a stop begins (or, with `--until-idle`, the
    /// queue is empty): encode slots first (any work: a job claimed there runs whole), then the
    /// fast lane (quick work: what an encode slot would otherwise keep waiting).
    private func claimUntilStopped(group: inout DiscardingTaskGroup) async {
        wake.yield(.pollInterval)
        for await _ in wakeUps {
            if state.isDraining { return }
            do {
                var dry: Set<Lane> = []
                while !state.isDraining,
                    let lane = Lane.allCases.first(where: {
                        !dry.contains($0) && state.running(in: $0) < $0.slots(configuration)
                    })
                {
                    guard let job = try await claim(into: lane) else {
                        // Quick work is a part of any work: when an encode slot finds none, neither does the lane.
                        dry.formUnion(lane == .encode ? Set(Lane.allCases) : [lane])
                        continue
                    }
                    start(job, in: lane, group: &group)
                }
                // A piece of another worker's long video, in an encode slot no job wants: the
                // fleet helps with long videos only where nobody else waits.
                while configuration.pieceSeconds > 0, !state.isDraining,
                    state.running(in: .encode) < Lane.encode.slots(configuration), let piece = try await claimPiece()
                {
                    startPiece(piece, group: &group)
                }
                // Background work, only in an encode slot no job wants (and never in a run that
                // ends when the queue is empty).
                if !untilIdle, configuration.variantAfterReuses > 0, !state.isDraining,
                    state.running(in: .encode) < Lane.encode.slots(configuration), let work = try await claimVariant()
                {
                    startVariant(work, group: &group)
                }
                if untilIdle, state.running == 0, try await idle() { return }
            } catch {
                state.databaseFailed("\(error)")
                logger.error("database error in the main loop; retrying", metadata: ["error": "\(error)"])
            }
        }
    }

    private func start(_ job: Job, in lane: Lane, group: inout DiscardingTaskGroup) {
        let control = state.started(in: lane)
        let threads = Lane.threads(running: state.running, cores: ProcessInfo.processInfo.activeProcessorCount)
        eventSink.yield(.claimed(job.id, lane))
        group.addTask {
            let ending = await self.runner.run(job, threads: threads, lane: lane, control: control) { event in
                self.eventSink.yield(.run(job.id, event))
            }
            self.eventSink.yield(.finished(job.id, ending))
            self.state.finished(control, ending: ending)
            self.wake.yield(.slotFreed)
        }
    }

    private func claimPiece() async throws -> PieceRunner.Piece? {
        guard state.hasPiecesTable else { return nil }
        let (store, configuration, worker) = (self.store, configuration, "\(identity.host)/\(identity.pid)")
        return try await database.withSession("claim a piece") {
            try store.claimPiece(
                $0, ofJob: nil, staleAfter: configuration.staleAfter, worker: worker, as: Pieces.Span.self)
        }
    }

    private func startPiece(_ piece: PieceRunner.Piece, group: inout DiscardingTaskGroup) {
        let control = state.started(in: .encode)
        let threads = Lane.threads(running: state.running, cores: ProcessInfo.processInfo.activeProcessorCount)
        eventSink.yield(.pieceStarted(piece.jobId, piece.index))
        group.addTask {
            let ending = await self.pieces.run(piece, input: nil, threads: threads, control: control)
            self.eventSink.yield(.pieceEnded(piece.jobId, piece.index, ending))
            self.state.finished(control, ending: nil)
            self.wake.yield(.slotFreed)
        }
    }

    private func claimVariant() async throws -> JobStore.VariantWork? {
        guard state.hasVariantsTable else { return nil }
        let (store, configuration, hasPausedTable) = (self.store, configuration, state.hasPausedTable)
        return try await database.withSession("claim variant work") {
            try store.claimVariantWork(
                $0, pipelineVersion: configuration.pipelineVersion, staleAfter: configuration.staleAfter,
                uploadWait: configuration.uploadWait, hasPausedTable: hasPausedTable)
        }
    }

    private func startVariant(_ work: JobStore.VariantWork, group: inout DiscardingTaskGroup) {
        let control = state.started(in: .encode)
        let threads = Lane.threads(running: state.running, cores: ProcessInfo.processInfo.activeProcessorCount)
        eventSink.yield(.variantStarted(work.jobId))
        group.addTask {
            let ending = await self.variants.run(work, threads: threads, control: control)
            self.eventSink.yield(.variantEnded(work.jobId, ending))
            self.state.finished(control, ending: nil)
            self.wake.yield(.slotFreed)
        }
    }

    /// Lets running jobs finish within the grace period, then stops the rest (each run puts its
    /// job back to PENDING), and waits for them all.
    private func drainRunningJobs() async {
        guard state.running > 0 else { return }
        let grace = Task {
            try await Task.sleep(for: .seconds(configuration.shutdownGrace))
            state.stopAll()
        }
        for await _ in wakeUps where state.running == 0 { break }
        grace.cancel()
    }

    private func claim(into lane: Lane) async throws -> Job? {
        let (store, host, pid, configuration) = (self.store, identity.host, identity.pid, configuration)
        let rules = lane.claimRules(configuration, hasPausedTable: state.hasPausedTable)
        let job = try await database.withSession("claim a job") {
            try store.claim(
                $0, rules: rules, retryBase: configuration.retryBase, uploadWait: configuration.uploadWait, host: host,
                pid: pid, lane: lane.rawValue)
        }
        state.polled()
        return job
    }
}
