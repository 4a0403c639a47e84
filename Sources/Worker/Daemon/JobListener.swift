import Queue

/// The listening duty: waits for NOTIFY on the jobs channel, on a connection of its own (a
/// session, not a transaction-mode pooler's), and wakes the claimer; after an error it subscribes
/// again a second later.
struct JobListener: Sendable {
    let connection: PostgresConnection
    let wake: AsyncStream<WorkerService.WakeUp>.Continuation

    func run() async {
        var subscribed = false
        while !Task.isCancelled {
            do {
                let notified = try await connection.withSession("wait for new jobs") { [subscribed] session in
                    if !subscribed { try session.listen(JobStore.jobsChannel) }
                    return try !session.waitForNotifications(timeout: .milliseconds(500)).isEmpty
                }
                subscribed = true
                if notified { wake.yield(.notified) }
            } catch {
                subscribed = false
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
