import Foundation
import Logging
import Media
import Queue

/// Forwarded videos for free: a job whose bytes, type, profile and pipeline match a completed
/// job's copies that job's outputs to its own keys (inside the store) and completes with the same
/// write-back, without starting a child.
extension JobRunner {
    enum ReuseLookup {
        /// A result to reuse.
        case found(JobStore.FoundResult<KeptResult>)
        /// None: this run makes it (and keeps it for the next).
        case make
        /// Reuse is off for this database (no outputs table).
        case unavailable
    }

    /// Looks for a result to reuse. When another worker is making the same result right now,
    /// waits for it (heartbeating) up to `reuseWait`, then makes it here anyway: two uploads of
    /// the same bytes at once are made once, and never wait on each other for ever. Without
    /// `wait` (a first look) it only looks.
    func lookForReuse(_ run: Run, key: JobStore.ReuseKey, wait: Bool = true) async throws -> ReuseLookup {
        let (job, store, connection, outputs) = (run.job, store, run.connection, configuration.tables.outputs)
        guard try await connection.withSession("look for the outputs table", { try store.hasTable($0, outputs) })
        else { return .unavailable }
        let deadline = ContinuousClock.now + .seconds(configuration.reuseWait)
        while true {
            if let found = try await connection.withSession(
                "look for a reusable result",
                {
                    try store.reusableResult($0, key: key, as: KeptResult.self)
                })
            {
                // Made before a byte budget that it does not fit: made again, to the budget.
                let budget = configuration.maxBytes[job.qualityProfile] ?? Int64.max
                guard Int64(found.result.outputs[.video]?.bytes ?? 0) <= budget else { return .make }
                return .found(found)
            }
            // Without session locks (a transaction-mode pooler) two uploads of the same bytes at
            // once are both made.
            guard wait, let reuseLocks, try await !reuseLocks.take(key, for: job.id) else { return .make }
            if ContinuousClock.now >= deadline {
                logger.warning("another worker has been making the same result for too long; making it here too")
                return .make
            }
            guard
                try await connection.withSession(
                    "wait for the same result",
                    { [job] in
                        try store.heartbeat($0, job: job, progress: 0, estimatedSeconds: nil)
                    })
            else { return .make }
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// Copies the outputs of `found` to this job's keys and records them. Nil when they cannot be
    /// reused after all (an output was deleted from the store): the caller makes them.
    func reuseResult(_ run: Run, found: JobStore.FoundResult<KeptResult>, sha256: String) async throws -> Ending? {
        let (job, kept) = (run.job, found.result)
        var stored: [StoredOutput] = []
        for (role, file) in kept.outputs.sorted(by: { $0.key < $1.key }) {
            guard let source = kept.keys[role] else { return nil }
            let target = OutputKeys.key(jobId: job.id, role: role)
            do {
                try await storage.copy(from: source, to: target)
            } catch .notFound {
                logger.info(
                    "a reusable output is gone from the store; making the outputs",
                    metadata: ["from": "\(found.jobId)", "key": "\(source)"])
                return nil
            } catch {
                return try await run.fail(JobFailure(.storage, "could not copy the \(role.rawValue) output: \(error)"))
            }
            var output = StoredOutput(
                file: file, key: target, url: storage.publicURL(for: target),
                damage: role == .video ? kept.damage : nil)
            output.reusedFrom = found.jobId
            stored.append(output)
        }
        metrics.reused()
        return try await complete(
            run, input: kept.input, stored: stored, sha256: sha256, reusable: nil,
            event: run.event(
                "reused", message: "the same bytes as job \(found.jobId): its \(stored.count) outputs copied"))
    }

    /// Counts a completed reuse of the result job `source` made; the reuse that makes the video
    /// popular (`variantAfterReuses`) queues its AV1 variant. A failure only loses a count.
    func countReuse(_ key: JobStore.ReuseKey, of source: Int, logger: Logger) async {
        guard configuration.variantAfterReuses > 0 else { return }
        let (store, threshold) = (store, configuration.variantAfterReuses)
        do {
            if try await database.withSession(
                "count a reuse", { try store.countReuse($0, key: key, jobId: source, threshold: threshold) })
            {
                logger.info("a popular video: its AV1 variant is queued", metadata: ["source": "\(source)"])
            }
        } catch {
            logger.warning("could not count the reuse", metadata: ["error": "\(error)"])
        }
    }
}
