public import Foundation
public import Logging
import Media
import Queue

/// What `/status.json` serves: the queue as `JobStore.queueStatus` reads it, on a connection of its
/// own (opened on first use, so a daemon nobody watches holds none), at most once a second however
/// many pages are open.
public final class QueueStatusSource: @unchecked Sendable {
    // @unchecked: `cached` is only touched under `lock`; the connection serialises its own calls.
    private let store: JobStore
    private let connection: PostgresConnection
    private let lock = NSLock()
    private var cached: (at: ContinuousClock.Instant, data: Data)?

    public init(configuration: Configuration, logger: Logger) {
        store = JobStore(tables: configuration.tables)
        connection = configuration.connection(label: "status", logger: logger, reconnectPatience: .seconds(2))
    }

    /// The queue as JSON, or nil when the database does not answer.
    public func json() async -> Data? {
        if let cached = lock.withLock({ cached }), ContinuousClock.now - cached.at < .seconds(1) { return cached.data }
        let store = store
        guard let status = try? await connection.withSession("read the queue's status", { try store.queueStatus($0) }),
            let data = try? JSONFormat.encoder().encode(status)
        else { return nil }
        lock.withLock { cached = (.now, data) }
        return data
    }
}
