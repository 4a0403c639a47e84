import Foundation
import Queue

/// The duties beside claiming: the idle check, rescue of abandoned jobs, the queue-depth sampler,
/// the systemd reporter and the listener that wakes the claimer.
extension WorkerService {
    func idle() async throws -> Bool {
        let (store, uploadWait, hasPausedTable) = (self.store, configuration.uploadWait, state.hasPausedTable)
        return try await database.withSession("check for work") {
            try store.isIdle($0, uploadWait: uploadWait, hasPausedTable: hasPausedTable)
        }
    }

    func rescue() async {
        let (store, host, pid, configuration) = (self.store, identity.host, identity.pid, configuration)
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

    func sampleDepth() async {
        let store = self.store
        if let depth = try? await database.withSession("count jobs", { try store.depth($0) }) {
            metrics.queueDepth(depth)
        }
    }

    /// Runs `body` now and then every `interval`, until the task is cancelled.
    func every(_ interval: Duration, _ body: @Sendable () async -> Void) async {
        while !Task.isCancelled {
            await body()
            try? await Task.sleep(for: interval)
        }
    }

    /// Watchdog ping while healthy, status line when it changed, the running-jobs gauge.
    func reportToSystemd() {
        metrics.running(state.running)
        let now = ContinuousClock.now
        if let interval = notifier.watchdogInterval, state.watchdogDue(now: now, interval: interval),
            state.health(window: healthWindow).live
        {
            notifier.watchdog()
        }
        if notifier.isEnabled, let line = state.changedStatusLine(now: now) { notifier.status(line) }
    }

    /// Waits for NOTIFY on the jobs channel and wakes the claimer.
    func listen(_ connection: PostgresConnection) async {
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
