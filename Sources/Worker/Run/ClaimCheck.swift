import Logging
import Queue

/// The question every storage write asks right before it happens: does this run still hold its
/// claim? Each ask waits at most `wait` for the database; an unanswered ask (a partition, a
/// database restarting) is asked again until `patience` has passed, after which other workers
/// count the claim as abandoned anyway. Only a yes lets the write happen, so a run cut off from the
/// database stores nothing.
struct ClaimCheck: Sendable {
    let database: any PostgresClient
    /// How long the claim may go unconfirmed before the answer is no (the stale-after time).
    let patience: Duration
    let logger: Logger
    static let wait = Duration.seconds(5)

    func confirm(_ what: String, _ check: @escaping @Sendable (PostgresSession) throws -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + patience
        while true {
            let started = ContinuousClock.now
            if let answer = try? await database.withSession("check the claim of \(what)", within: Self.wait, check) {
                return answer
            }
            guard ContinuousClock.now < deadline else { break }
            logger.warning("the database did not confirm the claim of \(what) in time; asking again")
            // An error answers at once: do not spin.
            try? await Task.sleep(until: started + .seconds(1))
        }
        logger.warning("the claim of \(what) was not confirmed; storing nothing")
        return false
    }
}
