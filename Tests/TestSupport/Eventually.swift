import Foundation

/// Waits for an event: until `condition` holds (a row state, a log line, a metric), checking it
/// every 50 ms for at most `timeout` seconds. Returns whether it held, as soon as it does.
public func eventually(timeout: Double, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .seconds(timeout)
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
