import Observability

/// The systemd duty, every second: the watchdog ping only while the worker is healthy (the
/// database answered within `healthWindow`), the status line when it changed, and the
/// running-jobs gauge.
struct SystemdReporter: Sendable {
    let notifier: SystemdNotifier
    let state: ServiceState
    let metrics: WorkerMetrics
    let healthWindow: Duration

    let interval = Duration.seconds(1)

    func report() {
        metrics.running(state.running)
        let now = ContinuousClock.now
        if let interval = notifier.watchdogInterval, state.watchdogDue(now: now, interval: interval),
            state.health(window: healthWindow).live
        {
            notifier.watchdog()
        }
        if notifier.isEnabled, let line = state.changedStatusLine(now: now) { notifier.status(line) }
    }
}
