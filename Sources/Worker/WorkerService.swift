import Foundation
public import Logging
import Queue
public import ServiceLifecycle
public import Storage

/// The daemon (`media-worker serve`): claims jobs with `FOR UPDATE SKIP LOCKED` into a fixed
/// number of slots, wakes on `LISTEN` or every poll interval, rescues abandoned jobs, and on a
/// graceful shutdown stops claiming, lets running jobs finish within the grace period, then stops
/// the rest and puts them back to PENDING.
public final class WorkerService: Service, Sendable {
    let configuration: Configuration
    let runner: JobRunner
    let logger: Logger
    let untilIdle: Bool
    let state = ServiceState()

    public init(configuration: Configuration, storage: any Storage, logger: Logger, untilIdle: Bool = false) {
        self.configuration = configuration
        self.runner = JobRunner(configuration: configuration, storage: storage, logger: logger)
        self.logger = logger
        self.untilIdle = untilIdle
    }

    /// Jobs finished by this process, by how they ended.
    public var endings: [JobRunner.Ending: Int] { state.endings }

    public func run() async throws {
        let store = runner.store
        let poller = PostgresConnection(url: configuration.databaseURL, label: "poller", logger: logger)
        let listener = PostgresConnection(url: configuration.databaseURL, label: "listener", logger: logger)
        let host = runner.host
        let pid = runner.pid
        logger.info("worker started", metadata: ["settings": "\(configuration.redactedSummary)"])

        try await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.listen(listener) }
                var lastRescue = ContinuousClock.now - .seconds(3600)
                var lastPoll = ContinuousClock.now - .seconds(3600)
                var drainingSince: ContinuousClock.Instant?
                while true {
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
                            if untilIdle, state.running == 0 {
                                let idle = try await poller.withSession("check for work") { [configuration] in
                                    try store.isIdle($0, uploadWait: configuration.uploadWait)
                                }
                                if idle { break }
                                // Retries wait out their backoff: look again soon.
                                lastPoll = ContinuousClock.now - .seconds(max(0, configuration.pollInterval - 1))
                            }
                        } catch {
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
        }
        await poller.close()
        await listener.close()
        logger.info(
            "worker stopped", metadata: ["ended": "\(state.endings.map { "\($0.key.rawValue)=\($0.value)" }.sorted())"])
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
    func stopAll() { lock.withLock { Array(controls.values) }.forEach { $0.stop() } }
}
