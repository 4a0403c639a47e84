import Foundation
import Logging
import Media
import Observability
import Queue

/// One claimed run of a job: its database writes, all fenced by the claim's token.
struct Run: Sendable, WorkingWithContext {
    let job: Job
    /// The runner's context, its log naming the job.
    let context: WorkerContext
    let onFailure: @Sendable (Int, String) -> Void
    let started = ContinuousClock.now

    var elapsed: Duration { ContinuousClock.now - started }

    /// The run's whole expected duration in seconds (`estimatedDurationSeconds`) when `left`
    /// seconds remain: what it took so far, plus that.
    func expectedSeconds(left: Int) -> Int { Int((elapsed / .seconds(1)).rounded(.up)) + left }

    func event(_ name: String, message: String? = nil) -> ProcessingLogEvent {
        ProcessingLogEvent(event: name, attempt: job.attempt, host: identity.host, pid: identity.pid, message: message)
    }

    /// Records `failure`: retried while attempts remain if its code is retryable (`crashed` and
    /// `timeout` once at most), FAILED otherwise.
    func fail(_ failure: JobFailure) async throws -> JobRunner.Ending {
        let code = failure.code
        let retry = code.isRetried(afterAttempt: job.attempt, of: configuration.maxAttempts)
        let text = "\(failure)"
        let outcome = try await database.withSession("record a failure") { [store, job] session in
            try store.fail(
                session, job: job, errorMessage: text, retry: retry,
                event: event(retry ? "retry" : "failed", message: text))
        }
        logger.warning("job failed", metadata: ["error": "\(text)", "outcome": "\(outcome)"])
        if outcome == .retrying { metrics.retry(code: code) }
        onFailure(job.id, text)
        switch outcome {
        case .retrying: return .retrying
        case .failed: return .failed
        case .fencedOff: return try await takenAway()
        }
    }

    /// Ends a job not worth doing as CANCELLED, with a `cancelled` failure saying why.
    func cancel(_ reason: String) async throws -> JobRunner.Ending {
        let message = "\(JobFailure(.cancelled, reason))"
        let done = try await database.withSession("cancel the job") { [store, job] in
            try store.cancel($0, job: job, errorMessage: message, event: event("cancelled", message: message))
        }
        logger.info("job cancelled", metadata: ["reason": "\(message)"])
        return done ? .cancelled : .fencedOff
    }

    func release() async throws -> JobRunner.Ending {
        let done = try await database.withSession("release the job") { [store, job] in
            try store.release(
                $0, job: job, event: event("released", message: "worker stopping; not counted as an attempt"))
        }
        guard done else { return try await takenAway() }
        logger.info("job released for another worker")
        return .released
    }

    /// How a run ends whose fenced write was refused: a job still held but no longer wanted (its
    /// upload or user deleted meanwhile) is cancelled here, having written nothing more; a job the
    /// app cancelled is `.cancelled` (its upload's processing status says so from now on); any
    /// other belongs to someone else now.
    func takenAway() async throws -> JobRunner.Ending {
        let state = try await database.withSession("read where the run stands") { [store, job] in
            try store.claimState($0, job: job)
        }
        switch state {
        case .unwanted(let reason):
            return try await cancel("\(reason) while it was being processed; nothing more was written")
        case .cancelled:
            logger.info("the job was cancelled while running")
            try? await database.withSession("write the upload's processing status") { [store, job] in
                try store.writeProcessingStatus($0, job: job, status: .cancelled)
            }
            return .cancelled
        case .held:
            // The claim could not be confirmed before a storage write, but holds now: nothing was
            // stored; another attempt makes it.
            return try await fail(
                JobFailure(
                    .database, "the database did not confirm the job's claim before its outputs were stored"))
        case .lost:
            logger.info("the job was taken away while running", metadata: ["state": "\(state)"])
            return .fencedOff
        }
    }

    /// Asked right before every storage write: whether this run still holds its job and the job
    /// is wanted (`ClaimCheck`), waiting for the database's answer up to the stale-after time.
    /// Doubles as a heartbeat.
    func holdsClaim() async -> Bool {
        let check = ClaimCheck(database: database, patience: .seconds(configuration.staleAfter), logger: logger)
        return await check.confirm("the job") { [store, job] in try store.heartbeat($0, job: job) }
    }

    /// Sends a heartbeat every `interval` until cancelled. A fenced-off run is noticed by the
    /// progress writes and the final write, so this one only keeps the row fresh.
    func keepAlive(every interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { return }
            do {
                _ = try await database.withSession("send a heartbeat") { [store, job] in
                    try store.heartbeat($0, job: job)
                }
            } catch {
                logger.warning("could not send a heartbeat; retrying", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Writes progress at most once a second, and at least every 3 s as a heartbeat, until
    /// cancelled, announcing it to the app at every ten points. The child's share of the job is
    /// what remains after `from` (a join after a long video's pieces starts at 0.95). A fenced write (rescued,
    /// cancelled, reprocessed) stops the child.
    func beat(state: ChildState, control: RunControl, from: Double = 0) async {
        var written = -1
        var announced = 0
        var lastWrite = ContinuousClock.now - .seconds(10)
        var prior: Int?
        var timeLeft = TimeLeft()
        let began = ContinuousClock.now
        while !Task.isCancelled {
            // 100 is the write-back's, once the outputs are stored: a finished child is at 99.
            let percent = min(99, Int((from + (1 - from) * state.progress) * 100))
            if prior == nil, let durationMs = state.durationMs {
                prior = estimatedSeconds(
                    durationMs: durationMs, type: job.processingType, profile: job.qualityProfile)
            }
            // The time left at the child's own pace once it is known, else the guess from the
            // input's duration; the estimate is the whole run's, from its claim.
            let childSeconds = (ContinuousClock.now - began) / .seconds(1)
            timeLeft.record(state.progress, at: childSeconds)
            let left = timeLeft.secondsLeft(at: childSeconds).map { Int($0.rounded(.up)) }
            let estimate = left.map(expectedSeconds) ?? prior
            if percent != written || ContinuousClock.now - lastWrite >= .seconds(3) {
                // The app hears of progress once per ten points: enough for a progress ring.
                let announce = percent / 10 > announced / 10
                do {
                    let alive = try await database.withSession("write progress") { [store, job, estimate] in
                        try store.writeProgress(
                            $0, job: job, progress: percent, estimatedSeconds: estimate, secondsLeft: left,
                            announce: announce)
                    }
                    if !alive {
                        control.fence()
                        return
                    }
                    written = percent
                    if announce { announced = percent }
                    lastWrite = ContinuousClock.now
                } catch {
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
func estimatedSeconds(durationMs: Int, type: ProcessingType, profile: QualityProfile) -> Int {
    let seconds = Double(durationMs) / 1000
    switch type {
    case .metadata: return 1
    case .thumbnail: return 2
    case .preview: return 3
    case .compression, .fullProcessing:
        return Int((seconds * profile.secondsPerSecond).rounded(.up)) + 2
    }
}
