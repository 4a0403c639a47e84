import Foundation
import Logging
import Operations
import Queue

/// One claimed run of a job: its database writes, all fenced by the claim's token.
struct Run: Sendable {
    let job: Job
    let connection: PostgresConnection
    let store: JobStore
    let host: String
    let pid: Int32
    let maxAttempts: Int
    let logger: Logger
    let metrics: WorkerMetrics
    let onFailure: @Sendable (Int, String) -> Void
    let started = ContinuousClock.now

    /// Codes whose failures may go away on a retry.
    static let retryableCodes: Set<String> = ["storage", "database", "crashed", "timeout", "internal"]
    /// Codes a crafted input can cause at will (a decoder crash, a stall): retried once, in case
    /// the host was to blame, never more.
    static let retriedOnce: Set<String> = ["crashed", "timeout"]

    var elapsed: Duration { ContinuousClock.now - started }

    func event(_ name: String, message: String? = nil) -> ProcessingLogEvent {
        ProcessingLogEvent(event: name, attempt: job.attempt, host: host, pid: pid, message: message)
    }

    func fail(code: String, message: String) async throws -> JobRunner.Ending {
        let retryable = Self.retryableCodes.contains(code)
        let maxAttempts = Self.retriedOnce.contains(code) ? min(2, self.maxAttempts) : self.maxAttempts
        let willRetry = retryable && job.attempt < maxAttempts
        let text = "\(code): \(message)"
        let outcome = try await connection.withSession("record a failure") { [store, job] session in
            try store.fail(
                session, job: job, errorMessage: text, retryable: retryable,
                maxAttempts: maxAttempts,
                event: event(willRetry ? "retry" : "failed", message: text))
        }
        logger.warning("job failed", metadata: ["error": "\(text)", "outcome": "\(outcome.rawValue)"])
        if outcome == .retrying { metrics.retry(code: code) }
        onFailure(job.id, text)
        switch outcome {
        case .retrying: return .retrying
        case .failed: return .failed
        case .fencedOff: return .fencedOff
        }
    }

    func cancel(_ message: String) async throws -> JobRunner.Ending {
        let done = try await connection.withSession("cancel the job") { [store, job] in
            try store.cancel($0, job: job, errorMessage: message, event: event("cancelled", message: message))
        }
        logger.info("job cancelled", metadata: ["reason": "\(message)"])
        return done ? .cancelled : .fencedOff
    }

    func release() async throws -> JobRunner.Ending {
        let done = try await connection.withSession("release the job") { [store, job] in
            try store.release(
                $0, job: job, event: event("released", message: "worker stopping; not counted as an attempt"))
        }
        logger.info("job released for another worker")
        return done ? .released : .fencedOff
    }

    func currentStatus() async throws -> String? {
        try await connection.withSession("read the job's status") { [store, job] in try store.status($0, jobId: job.id)
        }
    }

    /// Writes progress at most once a second, and at least every 3 s as a heartbeat, until
    /// cancelled. A fenced write (rescued, cancelled, reprocessed) stops the child.
    func beat(state: ChildState, child: ChildProcess, control: RunControl, type: String, profile: String) async {
        var written = -1
        var lastWrite = ContinuousClock.now - .seconds(10)
        var estimate: Int?
        var relock = false
        while !Task.isCancelled {
            let percent = Int(state.progress * 100)
            if estimate == nil, let durationMs = state.durationMs {
                estimate = estimatedSeconds(durationMs: durationMs, type: type, profile: profile)
            }
            if percent != written || ContinuousClock.now - lastWrite >= .seconds(3) {
                do {
                    let alive = try await connection.withSession("write progress") { [store, job, estimate] in
                        try store.heartbeat($0, job: job, progress: percent, estimatedSeconds: estimate)
                    }
                    if !alive {
                        control.fence()
                        return
                    }
                    if relock {
                        // A reconnect lost the session's advisory lock: take it again, so
                        // rescuers keep seeing this worker as alive.
                        relock =
                            !(try await connection.withSession("lock the job again") { [store, job] in
                                try store.holdLock($0, job: job)
                            })
                    }
                    written = percent
                    lastWrite = ContinuousClock.now
                } catch {
                    relock = true
                    logger.warning("could not write progress; retrying", metadata: ["error": "\(error)"])
                }
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}

/// Seconds a job should take on this kind of host, from the input's duration: realtime factors
/// measured by the benchmark on 2 cores (MEDIUM FULL_PROCESSING ran at about 0.21× the input's
/// duration), rounded up.
func estimatedSeconds(durationMs: Int, type: String, profile: String) -> Int {
    let seconds = Double(durationMs) / 1000
    switch type {
    case "METADATA": return 1
    case "THUMBNAIL": return 2
    case "PREVIEW": return 3
    default:
        let factor = ["LOW": 0.12, "MEDIUM": 0.22, "HIGH": 0.5, "ULTRA": 1.0][profile] ?? 0.22
        return Int((seconds * factor).rounded(.up)) + 2
    }
}
