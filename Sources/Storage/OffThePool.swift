import Dispatch

/// Runs blocking file I/O on a dispatch thread, never on Swift's cooperative pool: a slow disk
/// must not stall every other task of the process (the daemon's heartbeats among them).
func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}
