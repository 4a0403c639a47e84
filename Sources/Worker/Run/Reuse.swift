import Foundation
import Logging
import Media
import Queue

/// Forwarded videos for free: a job whose bytes, type, profile and pipeline match a completed
/// job's points at that job's outputs and completes with the same write-back, without starting a
/// child.
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
        let (job, store, connection, outputs) = (run.job, store, run.database, configuration.tables.outputs)
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
                        try store.writeProgress($0, job: job, progress: 0, estimatedSeconds: nil)
                    })
            else { return .make }
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// Points this job at the outputs of `found` and records them: the same objects, nothing
    /// copied, so N forwards store the bytes once (an object stays while any live row references
    /// it; see `StorageSweep`). Nil when they cannot be reused after all (an object is missing
    /// or not what was kept, or the result was replaced or erased before this was recorded): the
    /// caller makes them.
    func reuseResult(_ run: Run, found: JobStore.FoundResult<KeptResult>, sha256: String) async throws -> Ending? {
        let kept = found.result
        var stored: [StoredOutput] = []
        for (role, file) in kept.outputs.sorted(by: { $0.key < $1.key }) {
            guard let key = kept.keys[role] else { return nil }
            do {
                guard let object = try await storage.object(at: key), object.bytes == Int64(file.bytes) else {
                    logger.warning(
                        "a reusable output is missing from the store or not what was kept; making the outputs",
                        metadata: ["from": "\(found.jobId)", "key": "\(key)"])
                    return nil
                }
            } catch {
                return try await run.fail(
                    JobFailure(.storage, "could not look up the \(role.rawValue) output to reuse: \(error)"))
            }
            var output = StoredOutput(
                file: file, key: key, url: storage.publicURL(for: key), sha256: kept.sha256?[role],
                damage: role == .video ? kept.damage : nil)
            output.reusedFrom = found.jobId
            stored.append(output)
        }
        do {
            let ending = try await complete(
                run, input: kept.input, stored: stored, sha256: sha256, reusable: nil, reusedFrom: found,
                event: run.event(
                    "reused", message: "the same bytes as job \(found.jobId): its \(stored.count) outputs shared"))
            if ending == .completed { metrics.reused() }
            return ending
        } catch is ReusedResultGone {
            logger.info("the result to reuse was replaced or erased meanwhile; making the outputs")
            return nil
        }
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
