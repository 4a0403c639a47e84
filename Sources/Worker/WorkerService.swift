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
/// Each duty is its own task: the claimer (woken through an `AsyncStream` by a notification, a
/// freed slot or the poll interval), the listener, the rescuer, the queue-depth sampler and the
/// systemd reporter (`READY=1` once the database and storage answered, `STATUS=`, `WATCHDOG=1` only
/// while the database answers, `STOPPING=1`). `events` tells an observer (the tests) what happens.
public final class WorkerService: Service, Sendable {
    let configuration: Configuration
    let runner: JobRunner
    let storage: any Storage
    let logger: Logger
    let untilIdle: Bool
    let metrics: WorkerMetrics
    let notifier: SystemdNotifier
    let state = ServiceState()
    /// The connections every statement but `LISTEN` and the reuse locks shares (see
    /// `Configuration.connectionBudget`); `/status` reads through it too.
    public let database: PostgresPool
    private let makingLocks: MakingLocks?
    /// What happened, as it happens.
    public let events: AsyncStream<WorkerEvent>
    private let eventSink: AsyncStream<WorkerEvent>.Continuation
    /// Why the claimer should look for work now.
    private let wakeUps: AsyncStream<WakeUp>
    private let wake: AsyncStream<WakeUp>.Continuation

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
        makingLocks =
            budget.locks
            ? MakingLocks(
                connection: configuration.connection(label: "locks", logger: logger),
                store: JobStore(tables: configuration.tables)) : nil
        self.runner = JobRunner(
            configuration: configuration, storage: storage, logger: logger, metrics: metrics, database: database,
            makingLocks: makingLocks, onFailure: { state.failed(job: $0, error: $1) })
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
        try await withGracefulShutdownHandler {
            try await self.waitForDependencies()
            guard !state.isDraining else { return }
            state.becameReady()
            notifier.ready(status: state.changedStatusLine(now: .now) ?? state.statusLine)
            logger.info("worker ready: database and storage answered")
            await self.lookForOwnTables()
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
            self.makingLocks?.stopRetrying()
            listener?.stopRetrying()
            // Grace for the jobs, then time to stop their children and release them.
            self.notifier.stopping(
                status: "stopping: \(self.state.running) running jobs get \(Int(self.configuration.shutdownGrace)) s",
                extend: .seconds(self.configuration.shutdownGrace + 30))
        }
        await database.close()
        await makingLocks?.close()
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
                    let lane = Lane.allCases.first(where: { !dry.contains($0) && state.running(in: $0) < slots($0) })
                {
                    guard let job = try await claim(into: lane) else {
                        // Quick work is a part of any work: when an encode slot finds none, neither does the lane.
                        dry.formUnion(lane == .encode ? Set(Lane.allCases) : [lane])
                        continue
                    }
                    start(job, in: lane, group: &group)
                }
                if untilIdle, state.running == 0, try await idle() { return }
            } catch {
                state.databaseFailed("\(error)")
                logger.error("database error in the main loop; retrying", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Slots of `lane` on this host.
    private func slots(_ lane: Lane) -> Int {
        switch lane {
        case .encode: configuration.concurrency
        case .fast: configuration.fastSlots
        }
    }

    private func start(_ job: Job, in lane: Lane, group: inout DiscardingTaskGroup) {
        let control = state.started(in: lane)
        let threads = self.threads(running: state.running)
        eventSink.yield(.claimed(job.id, lane))
        group.addTask {
            let ending = await self.runner.run(job, threads: threads, lane: lane, control: control) { event in
                self.eventSink.yield(.run(job.id, event))
            }
            self.state.finished(control, ending: ending)
            self.eventSink.yield(.finished(job.id, ending))
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
        let (store, host, pid, configuration) = (runner.store, runner.host, runner.pid, configuration)
        let rules = JobStore.ClaimRules(
            quickOnly: lane == .fast, maxSlotsPerUploader: configuration.maxSlotsPerUploader,
            pausesKnown: state.pausesKnown)
        let job = try await database.withSession("claim a job") {
            try store.claim(
                $0, rules: rules, retryBase: configuration.retryBase, uploadWait: configuration.uploadWait, host: host,
                pid: pid, lane: lane.rawValue)
        }
        state.polled()
        return job
    }

    private func idle() async throws -> Bool {
        let (store, uploadWait, pausesKnown) = (runner.store, configuration.uploadWait, state.pausesKnown)
        return try await database.withSession("check for work") {
            try store.isIdle($0, uploadWait: uploadWait, pausesKnown: pausesKnown)
        }
    }

    private func rescue() async {
        let (store, host, pid, configuration) = (runner.store, runner.host, runner.pid, configuration)
        do {
            let rescued = try await database.withSession("rescue stale jobs") {
                try store.rescueStale(
                    $0, staleAfter: configuration.staleAfter, maxAttempts: configuration.maxAttempts, host: host,
                    pid: pid)
            }
            state.polled()
            metrics.rescued(rescued.count)
            for job in rescued {
                logger.warning(
                    "rescued an abandoned job", metadata: ["job": "\(job.id)", "status": "\(job.status.rawValue)"])
                if job.status == .pending { wake.yield(.pollInterval) }
            }
        } catch {
            state.databaseFailed("\(error)")
        }
    }

    private func sampleDepth() async {
        let store = runner.store
        if let depth = try? await database.withSession("count jobs", { try store.depth($0) }) {
            metrics.queueDepth(depth)
        }
    }

    /// Runs `body` now and then every `interval`, until the task is cancelled.
    private func every(_ interval: Duration, _ body: @Sendable () async -> Void) async {
        while !Task.isCancelled {
            await body()
            try? await Task.sleep(for: interval)
        }
    }

    /// Start-up: waits until the database answers, the storage can be written, read and deleted,
    /// and a job's child can be fully confined, saying what is wrong meanwhile (in the log and in
    /// systemd's status). `--until-idle` runs give up at the first failure instead.
    private func waitForDependencies() async throws {
        var delay = 1.0
        while !state.isDraining {
            var problem: String
            do {
                let store = runner.store
                _ = try await database.withSession("check the database") { try store.serverVersion($0) }
                do {
                    try await storage.check()
                    guard let sandboxProblem = await checkSandbox() else { return }
                    problem = sandboxProblem
                } catch {
                    problem = "\(error)"
                }
            } catch {
                problem = "database unreachable (\(configuration.redactedDatabaseURL)): \(error)"
            }
            if untilIdle { throw WorkerStartError(problem) }
            logger.error("not ready; retrying in \(Int(delay)) s", metadata: ["problem": "\(problem)"])
            notifier.status("not ready: \(problem)")
            // Short naps, so a stop is not kept waiting for the end of a long one.
            let wakeAt = ContinuousClock.now + .seconds(delay)
            while ContinuousClock.now < wakeAt, !state.isDraining { try? await Task.sleep(for: .milliseconds(100)) }
            delay = min(delay * 2, 30)
        }
    }

    /// Fail closed: starts a confined child as a job's is started and returns why it is not fully
    /// confined (then no job is claimed), or nil. With `MEDIA_WORKER_SANDBOX=partial` the
    /// operator accepted less: said loudly, and jobs run.
    private func checkSandbox() async -> String? {
        let problem: String?
        do {
            problem = try await SandboxCheck.spawn(
                executable: configuration.childExecutable, temporaryDirectory: configuration.temporaryDirectory
            ).problem
        } catch {
            problem = "could not start a confined child: \(error)"
        }
        guard let problem else { return nil }
        if configuration.sandboxPolicy == .partial {
            logger.critical(
                "DANGEROUS: running jobs without a complete sandbox (MEDIA_WORKER_SANDBOX=partial)",
                metadata: ["problem": "\(problem)"])
            return nil
        }
        return "\(problem); fix: \(SandboxCheck.fix)"
    }

    /// Reuse of forwarded videos and pausing types need media-worker's own tables: without them
    /// (an app database nobody ran `migrate --own-tables-only` on) every job is made and nothing
    /// is paused, and the operator hears so once.
    private func lookForOwnTables() async {
        let (store, tables) = (runner.store, configuration.tables)
        let present = { (table: String) async -> Bool in
            (try? await self.database.withSession("look for media-worker's own tables") {
                try store.hasTable($0, table)
            }) != false
        }
        if configuration.reuseOutputs, await !present(tables.outputs) {
            logger.warning(
                "reuse of forwarded videos is off: the outputs table does not exist (run `media-worker migrate --own-tables-only`)",
                metadata: ["table": "\(tables.outputs)"])
        }
        if await !present(tables.paused) {
            state.pausesUnknown()
            logger.warning(
                "pausing processing types is off: the paused-types table does not exist (run `media-worker migrate --own-tables-only`)",
                metadata: ["table": "\(tables.paused)"])
        }
    }

    /// Watchdog ping while healthy, status line when it changed, the running-jobs gauge.
    private func reportToSystemd() {
        metrics.running(state.running)
        let now = ContinuousClock.now
        if let interval = notifier.watchdogInterval, state.watchdogDue(now: now, interval: interval),
            state.health(window: healthWindow).live
        {
            notifier.watchdog()
        }
        if notifier.isEnabled, let line = state.changedStatusLine(now: now) { notifier.status(line) }
    }

    /// Decoder/encoder threads for a job starting while `running` jobs run (itself included):
    /// the cores shared among the running jobs, at least two each, so a lone upload gets them all.
    private func threads(running: Int) -> Int {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        return max(2, cores / max(1, running))
    }

    /// Waits for NOTIFY on the jobs channel and wakes the claimer.
    private func listen(_ connection: PostgresConnection) async {
        var subscribed = false
        while !Task.isCancelled {
            do {
                let notified = try await connection.withSession("wait for new jobs") { [subscribed] session in
                    if !subscribed { try session.listen(JobStore.jobsChannel) }
                    return try !session.waitForNotifications(timeout: .milliseconds(500)).isEmpty
                }
                subscribed = true
                if notified { wake.yield(.notified) }
            } catch {
                subscribed = false
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}

/// What a `WorkerService` did, for whoever watches `events`.
public enum WorkerEvent: Sendable, Equatable {
    /// The database and storage answered: jobs are claimed from now on.
    case ready
    case claimed(Int, Lane)
    /// What a running job did (progress, stills published, outputs reused).
    case run(Int, JobRunner.Event)
    case finished(Int, JobRunner.Ending)
    /// The service is done; how its jobs ended.
    case stopped([JobRunner.Ending: Int])
}

/// The daemon's shared state: slots, wake-ups, shutdown.
final class ServiceState: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    private let lock = NSLock()
    /// The running runs, by their control (a job id can be claimed again, once retried, before
    /// its previous run has quite finished).
    private var controls: [ObjectIdentifier: (control: RunControl, lane: Lane)] = [:]
    private var pauses = true
    private var draining = false
    private var counts: [JobRunner.Ending: Int] = [:]
    private var ready = false
    private var lastPoll: ContinuousClock.Instant?
    private var databaseError: String?
    private var lastError: String?
    private var lastWatchdog: ContinuousClock.Instant?
    private var lastStatus = ""
    private var lastStatusAt: ContinuousClock.Instant?

    var running: Int { lock.withLock { controls.count } }
    var isDraining: Bool { lock.withLock { draining } }
    var endings: [JobRunner.Ending: Int] { lock.withLock { counts } }

    func running(in lane: Lane) -> Int { lock.withLock { controls.values.filter { $0.lane == lane }.count } }
    /// Whether media-worker's paused-types table exists (assumed until start-up found otherwise).
    var pausesKnown: Bool { lock.withLock { pauses } }
    func pausesUnknown() { lock.withLock { pauses = false } }

    func started(in lane: Lane) -> RunControl {
        let control = RunControl()
        lock.withLock { controls[ObjectIdentifier(control)] = (control, lane) }
        return control
    }

    func finished(_ control: RunControl, ending: JobRunner.Ending) {
        lock.withLock {
            controls[ObjectIdentifier(control)] = nil
            counts[ending, default: 0] += 1
        }
    }

    func drain() { lock.withLock { draining = true } }

    func becameReady() { lock.withLock { ready = true } }

    func polled() {
        lock.withLock {
            lastPoll = .now
            databaseError = nil
        }
    }

    func databaseFailed(_ error: String) { lock.withLock { databaseError = error } }
    func failed(job: Int, error: String) { lock.withLock { lastError = "job \(job): \(error)" } }

    /// Live while the loop polls the database successfully (or is draining); ready once start-up
    /// checks passed and until a stop begins.
    func health(window: Duration) -> Health {
        lock.withLock {
            let recent = lastPoll.map { ContinuousClock.now - $0 <= window } ?? false
            let live = draining || !ready || recent
            let detail: String
            if draining {
                detail = "stopping: \(controls.count) jobs running"
            } else if !ready {
                detail = "starting: waiting for the database and storage"
            } else if !recent {
                detail =
                    "database unanswered for more than \(window.components.seconds) s: \(databaseError ?? "no poll")"
            } else {
                detail = "ok: \(controls.count) jobs running"
            }
            return Health(live: live, ready: ready && !draining, detail: detail)
        }
    }

    func watchdogDue(now: ContinuousClock.Instant, interval: Duration) -> Bool {
        lock.withLock {
            guard lastWatchdog.map({ now - $0 >= interval }) ?? true else { return false }
            lastWatchdog = now
            return true
        }
    }

    /// What `systemctl status` shows: jobs running and done, and the last error.
    var statusLine: String {
        lock.withLock {
            let done = counts.values.reduce(0, +)
            var line =
                "\(controls.count) running, \(done) done (\(counts[.completed] ?? 0) completed, "
                + "\(counts[.failed] ?? 0) failed, \(counts[.retrying] ?? 0) to retry, "
                + "\(counts[.parked] ?? 0) first looks)"
            if draining { line = "stopping: " + line }
            if let databaseError { line += "; database: \(databaseError)" }
            if let lastError { line += "; last error: \(lastError)" }
            return String(line.prefix(400))
        }
    }

    /// The status line when it changed since last sent, at most once a second.
    func changedStatusLine(now: ContinuousClock.Instant) -> String? {
        let line = statusLine
        return lock.withLock {
            guard line != lastStatus, lastStatusAt.map({ now - $0 >= .seconds(1) }) ?? true else { return nil }
            lastStatus = line
            lastStatusAt = now
            return line
        }
    }
    func stopAll() { lock.withLock { controls.values.map(\.control) }.forEach { $0.stop() } }
}

/// The daemon could not start (`--until-idle` runs do not wait for the database or storage).
struct WorkerStartError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
