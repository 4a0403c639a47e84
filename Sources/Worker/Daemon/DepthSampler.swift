import Observability
import Queue

/// The sampling duty: every five seconds, the queue's depth by status and type into the metrics
/// (`media_worker_queue_depth`). A sample the database did not answer is skipped.
struct DepthSampler: Sendable, WorkingWithContext {
    let context: WorkerContext

    let interval = Duration.seconds(5)

    func sample() async {
        if let depth = try? await database.withSession("count jobs", { try store.depth($0) }) {
            metrics.queueDepth(depth)
        }
    }
}
