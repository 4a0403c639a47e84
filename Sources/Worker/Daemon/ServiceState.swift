import Foundation
import Observability

/// The daemon's shared state: slots, wake-ups, shutdown.
final class ServiceState: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    private let lock = NSLock()
    /// The running runs, by their control (a job id can be claimed again, once retried, before
    /// its previous run has quite finished).
    private var controls: [ObjectIdentifier: (control: RunControl, lane: Lane)] = [:]
    private var pauses = true
    private var variants = true
    private var pieces = true
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
    var hasPausedTable: Bool { lock.withLock { pauses } }
    func noPausedTable() { lock.withLock { pauses = false } }
    /// Whether media-worker's variants table exists (assumed until start-up found otherwise).
    var hasVariantsTable: Bool { lock.withLock { variants } }
    func noVariantsTable() { lock.withLock { variants = false } }
    /// Whether media-worker's pieces table exists (assumed until start-up found otherwise).
    var hasPiecesTable: Bool { lock.withLock { pieces } }
    func noPiecesTable() { lock.withLock { pieces = false } }

    func started(in lane: Lane) -> RunControl {
        let control = RunControl()
        lock.withLock { controls[ObjectIdentifier(control)] = (control, lane) }
        return control
    }

    /// A run ended (`ending` nil: background work, not a job).
    func finished(_ control: RunControl, ending: JobRunner.Ending?) {
        lock.withLock {
            controls[ObjectIdentifier(control)] = nil
            if let ending { counts[ending, default: 0] += 1 }
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
