public import Foundation
import Media
public import Queue

/// What `/status.json` serves: the queue as `JobStore.queueStatus` reads it, through the daemon's
/// pool, at most once a second however many pages are open.
public final class QueueStatusSource: @unchecked Sendable {
    // @unchecked: `cached` is only touched under `lock`.
    private let store: JobStore
    private let database: any PostgresClient
    private let lock = NSLock()
    private var cached: (at: ContinuousClock.Instant, data: Data)?

    public init(configuration: Configuration, database: any PostgresClient) {
        store = JobStore(tables: configuration.tables)
        self.database = database
    }

    /// The queue as JSON, or nil when the database does not answer.
    public func json() async -> Data? {
        if let cached = lock.withLock({ cached }), ContinuousClock.now - cached.at < .seconds(1) { return cached.data }
        let store = store
        guard let status = try? await database.withSession("read the queue's status", { try store.queueStatus($0) }),
            let data = try? JSONFormat.encoder().encode(status)
        else { return nil }
        lock.withLock { cached = (.now, data) }
        return data
    }
}
