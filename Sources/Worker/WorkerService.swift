import Foundation
public import Logging
public import Operations
import Queue
public import ServiceLifecycle
public import Storage

/// The daemon (`media-worker serve`): claims jobs with `FOR UPDATE SKIP LOCKED` into a fixed
/// number of slots, wakes on `LISTEN` or every poll interval, rescues abandoned jobs, and on a
/// graceful shutdown stops claiming, lets running jobs finish within the grace period, then stops
/// the rest and puts them back to PENDING.
///
/// It tells systemd how it is doing (`READY=1` once the database and storage answered, `STATUS=`,
/// `WATCHDOG=1` only while the loop runs and the database answers, `STOPPING=1`) and feeds the
/// metrics and `health()`.
public final class WorkerService: Service, Sendable {
    let configuration: Configuration
    let runner: JobRunner
    let storage: any Storage
    let logger: Logger
    let untilIdle: Bool
    let metrics: WorkerMetrics
    let notifier: SystemdNotifier
    let state = ServiceState()

    public init(
        configuration: Configuration, storage: any Storage, logger: Logger, untilIdle: Bool = false,
        metrics: WorkerMetrics = WorkerMetrics(), notifier: SystemdNotifier = SystemdNotifier(environment: [:])
    ) {
        self.configuration = configuration
        let state = state
        self.runner = JobRunner(
            configuration: configuration, storage: storage, logger: logger, metrics: metrics,
            onFailure: { state.failed(job: $0, error: $1) })
        self.storage = storage
        self.logger = logger
        self.untilIdle = untilIdle
        self.metrics = metrics
        self.notifier = notifier
    }

    /// How long the database may go unanswered before the worker counts as unhealthy (no more
    /// watchdog pings, `/healthz` 503): the stale-after time, after which other workers rescue
    /// this one's jobs anyway.
    var healthWindow: Duration { .seconds(max(configuration.staleAfter, 3 * configuration.pollInterval)) }

    /// For `/healthz` and `/readyz`.
    public func health() -> Health { state.health(window: healthWindow) }

    /// Jobs finished by this process, by how they ended.
    public var endings: [JobRunner.Ending: Int] { state.endings }

    public func run() async throws {
        let store = runner.store
        let poller = PostgresConnection(url: configuration.databaseURL, label: "poller", logger: logger)
        let listener = PostgresConnection(url: configuration.databaseURL, label: "listener", logger: logger)
        let host = runner.host
        let pid = runner.pid
        logger.info("worker starting", metadata: ["settings": "\(configuration.redactedSummary)"])

        try await withGracefulShutdownHandler {
            try await self.waitForDependencies(poller)
            guard !state.isDraining else { return }
            state.becameReady()
            notifier.ready(status: state.changedStatusLine(now: .now) ?? state.statusLine)
            logger.info("worker ready: database and storage answered")
            await withDiscardingTaskGroup { group in
                group.addTask { await self.listen(listener) }
                var lastRescue = ContinuousClock.now - .seconds(3600)
                var lastPoll = ContinuousClock.now - .seconds(3600)
                var lastDepth = ContinuousClock.now - .seconds(3600)
                var drainingSince: ContinuousClock.Instant?
                while true {
                    self.reportToSystemd()
                    if state.isDraining {
                        let since = drainingSince ?? ContinuousClock.now
                        drainingSince = since
                        if state.running == 0 { break }
                        if ContinuousClock.now - since > .seconds(configuration.shutdownGrace) { state.stopAll() }
                        try? await Task.sleep(for: .milliseconds(100))
                        continue
                    }
                    let due = ContinuousClock.now - lastPoll >= .seconds(configuration.pollInterval)
                    if due || state.takeWakeUp() {
                        lastPoll = ContinuousClock.now
                        do {
                            if ContinuousClock.now - lastRescue >= .seconds(max(1, configuration.staleAfter / 4)) {
                                lastRescue = ContinuousClock.now
                                let rescued = try await poller.withSession("rescue stale jobs") { [configuration] in
                                    try store.rescueStale(
                                        $0, staleAfter: configuration.staleAfter,
                                        maxAttempts: configuration.maxAttempts,
                                        host: host, pid: pid)
                                }
                                metrics.rescued(rescued.count)
                                for job in rescued {
                                    logger.warning(
                                        "rescued an abandoned job",
                                        metadata: ["job": "\(job.id)", "status": "\(job.status)"])
                                }
                            }
                            while state.running < configuration.concurrency, !state.isDraining,
                                let job = try await poller.withSession(
                                    "claim a job",
                                    { [configuration] in
                                        try store.claim(
                                            $0, retryBase: configuration.retryBase,
                                            uploadWait: configuration.uploadWait,
                                            host: host, pid: pid)
                                    })
                            {
                                let control = state.started(job.id)
                                let threads = self.threads(running: state.running)
                                group.addTask {
                                    let ending = await self.runner.run(job, threads: threads, control: control)
                                    self.state.finished(job.id, ending: ending)
                                }
                            }
                            if ContinuousClock.now - lastDepth >= .seconds(5) {
                                lastDepth = ContinuousClock.now
                                metrics.queueDepth(try await poller.withSession("count jobs") { try store.depth($0) })
                            }
                            state.polled()
                            if untilIdle, state.running == 0 {
                                let idle = try await poller.withSession("check for work") { [configuration] in
                                    try store.isIdle($0, uploadWait: configuration.uploadWait)
                                }
                                if idle { break }
                                // Retries wait out their backoff: look again soon.
                                lastPoll = ContinuousClock.now - .seconds(max(0, configuration.pollInterval - 1))
                            }
                        } catch {
                            state.databaseFailed("\(error)")
                            logger.error("database error in the main loop; retrying", metadata: ["error": "\(error)"])
                            try? await Task.sleep(for: .seconds(1))
                        }
                    }
                    if state.consumeFinished() { continue }
                    try? await Task.sleep(for: .milliseconds(50))
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.logger.info("stopping: no new jobs; running ones get the grace period")
            self.state.drain()
            // Grace for the jobs, then time to stop their children and release them.
            self.notifier.stopping(
                status: "stopping: \(self.state.running) running jobs get \(Int(self.configuration.shutdownGrace)) s",
                extend: .seconds(self.configuration.shutdownGrace + 30))
        }
        await poller.close()
        await listener.close()
        logger.info(
            "worker stopped", metadata: ["ended": "\(state.endings.map { "\($0.key.rawValue)=\($0.value)" }.sorted())"])
    }

    /// Start-up: waits until the database answers and the storage can be written, read and
    /// deleted, saying what is wrong meanwhile (in the log and in systemd's status). `--until-idle`
    /// runs give up at the first failure instead.
    private func waitForDependencies(_ poller: PostgresConnection) async throws {
        var delay = 1.0
        while !state.isDraining {
            var problem: String
            do {
                _ = try await poller.withSession("check the database") { try $0.query("SELECT 1", operation: "ping") }
                do {
                    try await storage.check()
                    return
                } catch {
                    problem = "\(error)"
                }
            } catch {
                problem = "database unreachable (\(configuration.redactedDatabaseURL)): \(error)"
            }
            if untilIdle { throw WorkerStartError(problem) }
            logger.error("not ready; retrying in \(Int(delay)) s", metadata: ["problem": "\(problem)"])
            notifier.status("not ready: \(problem)")
            try? await Task.sleep(for: .seconds(delay))
            delay = min(delay * 2, 30)
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

    /// Waits for NOTIFY on the jobs channel and wakes the main loop.
    private func listen(_ connection: PostgresConnection) async {
        var subscribed = false
        while !Task.isCancelled {
            do {
                let notified = try await connection.withSession("wait for new jobs") { [subscribed] session in
                    if !subscribed { try session.listen(JobStore.jobsChannel) }
                    return try !session.waitForNotifications(timeout: .milliseconds(500)).isEmpty
                }
                subscribed = true
                if notified { state.wakeUp() }
            } catch {
                subscribed = false
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}

/// The daemon's shared state: slots, wake-ups, shutdown.
final class ServiceState: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    private let lock = NSLock()
    private var controls: [Int: RunControl] = [:]
    private var wake = false
    private var draining = false
    private var finishedSinceLook = false
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

    func started(_ id: Int) -> RunControl {
        let control = RunControl()
        lock.withLock { controls[id] = control }
        return control
    }

    func finished(_ id: Int, ending: JobRunner.Ending) {
        lock.withLock {
            controls[id] = nil
            counts[ending, default: 0] += 1
            finishedSinceLook = true
            wake = true
        }
    }

    func wakeUp() { lock.withLock { wake = true } }
    func takeWakeUp() -> Bool {
        lock.withLock {
            defer { wake = false }; return wake
        }
    }
    func consumeFinished() -> Bool {
        lock.withLock {
            defer { finishedSinceLook = false }; return finishedSinceLook
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
                + "\(counts[.failed] ?? 0) failed, \(counts[.retrying] ?? 0) to retry)"
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
    func stopAll() { lock.withLock { Array(controls.values) }.forEach { $0.stop() } }
}

/// The daemon could not start (`--until-idle` runs do not wait for the database or storage).
struct WorkerStartError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
