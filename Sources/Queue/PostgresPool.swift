import Foundation

/// Where statements run: one connection, or a pool of them.
public protocol PostgresClient: Sendable {
    /// Runs `body` with exclusive use of a connection; statements inside one `body` run back to
    /// back, so `body` is the unit for transactions.
    func withSession<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (PostgresSession) throws -> T
    ) async throws -> T
}

extension PostgresConnection: PostgresClient {}

/// At most `size` connections, each opened when first needed and lent out for one `withSession`
/// at a time; a caller finding them all busy waits for the first one back (in arrival order).
/// Nothing may rely on session state across calls: each call may get another connection.
public final class PostgresPool: PostgresClient, @unchecked Sendable {
    // @unchecked: `free` and `waiting` are only touched under `lock`.
    private let connections: [PostgresConnection]
    private let lock = NSLock()
    private var free: [Int]
    private var waiting: [CheckedContinuation<Int, Never>] = []

    /// `connect(i)` makes the i-th connection (not yet opened).
    public init(size: Int, connect: (Int) -> PostgresConnection) {
        connections = (0..<max(1, size)).map(connect)
        free = Array(connections.indices.reversed())
    }

    public var size: Int { connections.count }

    public func withSession<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (PostgresSession) throws -> T
    ) async throws -> T {
        let index = await borrow()
        defer { giveBack(index) }
        return try await connections[index].withSession(operation, body)
    }

    /// Each connection gives up at once when the server is gone (`PostgresConnection.stopRetrying`).
    public func stopRetrying() { connections.forEach { $0.stopRetrying() } }

    /// Closes every connection (callers must be done with the pool).
    public func close() async {
        for connection in connections { await connection.close() }
    }

    private func borrow() async -> Int {
        await withCheckedContinuation { continuation in
            let index: Int? = lock.withLock {
                if let index = free.popLast() { return index }
                waiting.append(continuation)
                return nil
            }
            if let index { continuation.resume(returning: index) }
        }
    }

    private func giveBack(_ index: Int) {
        let next: CheckedContinuation<Int, Never>? = lock.withLock {
            guard !waiting.isEmpty else {
                free.append(index)
                return nil
            }
            return waiting.removeFirst()
        }
        next?.resume(returning: index)
    }
}

extension PostgresClient {
    /// `withSession`, waiting at most `limit` for the answer: nil when none came by then. A
    /// database cut off by a partition never answers (nor errs, until TCP gives up minutes later);
    /// a question that must be answered before something irreversible (a storage write) asks
    /// this way. The statement itself may still run later; its result is then dropped.
    public func withSession<T: Sendable>(
        _ operation: String, within limit: Duration, _ body: @escaping @Sendable (PostgresSession) throws -> T
    ) async throws -> T? {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T?, any Error>) in
            let answer = FirstAnswer(continuation)
            Task {
                do {
                    answer.give(.success(try await withSession(operation, body)))
                } catch {
                    answer.give(.failure(error))
                }
            }
            Task {
                try? await Task.sleep(for: limit)
                answer.give(.success(nil))
            }
        }
    }
}

/// Resumes a continuation with the first of several answers.
private final class FirstAnswer<T: Sendable>: @unchecked Sendable {
    // @unchecked: `continuation` is only touched under `lock`.
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T?, any Error>?

    init(_ continuation: CheckedContinuation<T?, any Error>) { self.continuation = continuation }

    func give(_ answer: Result<T?, any Error>) {
        let waiting = lock.withLock {
            defer { continuation = nil }
            return continuation
        }
        waiting?.resume(with: answer)
    }
}
