import Logging
import Observability
import Queue

/// The rescue duty: every quarter of the stale-after time, puts back the jobs whose worker went
/// quiet (killed, frozen, cut off) — for another attempt, or failed once out of attempts — and
/// wakes the claimer for those that can run again. It never takes a job this worker runs itself,
/// however late that run's heartbeat. Its answer also tells the service that the database answers.
struct Rescuer: Sendable, WorkingWithContext {
    let context: WorkerContext
    let state: ServiceState
    let wake: AsyncStream<WorkerService.WakeUp>.Continuation

    var interval: Duration { .seconds(max(1, configuration.staleAfter / 4)) }

    func rescue() async {
        let (store, host, pid, configuration) = (store, identity.host, identity.pid, configuration)
        let own = context.running.jobs
        do {
            let rescued = try await database.withSession("rescue stale jobs") {
                try store.rescueStale(
                    $0, staleAfter: configuration.staleAfter, maxAttempts: configuration.maxAttempts, host: host,
                    pid: pid, sparing: own)
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
}
