import Foundation
import Queue

/// Who is making which result, so two uploads of the same bytes at once are made once: a session
/// advisory lock per result, all held on one connection of the daemon's (session pool mode only;
/// a transaction-mode pooler keeps no session), and within the daemon a set of the keys its own
/// runs are making (the server lets one session take its own lock twice).
final class ReuseLocks: @unchecked Sendable {
    // @unchecked: `held` is only touched under `lock`; the connection serialises its own calls.
    private let connection: PostgresConnection
    private let store: JobStore
    private let lock = NSLock()
    /// Result lock key → the job making it.
    private var held: [String: Int] = [:]

    init(connection: PostgresConnection, store: JobStore) {
        self.connection = connection
        self.store = store
    }

    /// Gives up at once when the database is gone (the daemon is stopping).
    func stopRetrying() { connection.stopRetrying() }

    /// Whether `job` may make the result under `key` (no one else is).
    func take(_ key: JobStore.ReuseKey, for job: Int) async throws -> Bool {
        let reserved = lock.withLock {
            guard held[key.lockKey] == nil else { return false }
            held[key.lockKey] = job
            return true
        }
        guard reserved else { return false }
        let store = store
        do {
            if try await connection.withSession("take the reuse lock", { try store.takeReuseLock($0, key: key) }) {
                return true
            }
        } catch {
            _ = lock.withLock { held.removeValue(forKey: key.lockKey) }
            throw error
        }
        _ = lock.withLock { held.removeValue(forKey: key.lockKey) }
        return false
    }

    /// Lets go of whatever `job` was making.
    func release(for job: Int) async {
        let keys = lock.withLock {
            let mine = held.filter { $0.value == job }.map(\.key)
            for key in mine { held.removeValue(forKey: key) }
            return mine
        }
        let store = store
        for key in keys {
            _ = try? await connection.withSession("release the reuse lock") {
                try store.releaseReuseLock($0, lockKey: key)
            }
        }
    }

    func close() async { await connection.close() }
}
