import Foundation
import JobChild
import Observability
import Queue
import Testing

@testable import Worker

// The fast tier (`swift test --filter Rules`): the daemon's pure rules, with no process started and
// no database, in milliseconds.

@Suite("Retry rules")
struct RetryRules {
    /// `crashed` and `timeout` are what a crafted input causes at will: retried once at most;
    /// a host's or a service's fault keeps its attempts; the input's fault is never retried.
    @Test(arguments: [
        (FailureCode.crashed, 1, true), (.crashed, 2, false), (.timeout, 1, true), (.timeout, 2, false),
        (.storage, 1, true), (.storage, 2, true), (.storage, 3, false), (.database, 2, true), (.internal, 3, false),
        (.corruptInput, 1, false), (.limitsExceeded, 1, false), (.unsupported, 1, false), (.inputMissing, 1, false),
        (.cancelled, 1, false),
    ])
    func retriedAfterAttempt(_ code: FailureCode, _ attempt: Int, _ retried: Bool) {
        #expect(code.isRetried(afterAttempt: attempt, of: 3) == retried, "\(code) after attempt \(attempt)")
    }

    /// With one attempt allowed, nothing is retried.
    @Test func oneAttemptMeansNoRetry() {
        #expect(FailureCode.allCases.allSatisfy { !$0.isRetried(afterAttempt: 1, of: 1) })
    }
}

@Suite("Configuration rules")
struct ConfigurationRules {
    static let required = ["DATABASE_URL": "postgresql://app:s3cret@db/app", "MEDIA_STORAGE_URL": "file:///srv/media"]

    func configuration(_ extra: [String: String] = [:]) throws -> Configuration {
        try Configuration(environment: Self.required.merging(extra) { $1 })
    }

    @Test func defaults() throws {
        let configuration = try configuration()
        #expect(configuration.fastSlots == 1 && configuration.maxSlotsPerUploader == 0)
        #expect(configuration.maxConnections == 4 && configuration.maxAttempts == 3)
        #expect(configuration.sandboxPolicy == .full && configuration.reuseOutputs && configuration.stillsFirst)
        #expect(configuration.tables.paused == #""media_worker_paused_types""#)
        #expect(configuration.pollInterval == 5 && configuration.staleAfter == 60)
        #expect(configuration.efficientVariant == .whenFree && configuration.maxBytes.isEmpty)
        #expect(configuration.pieceSeconds == 30 && configuration.piecesAfter == 120)
        #expect(configuration.tables.pieces == #""media_worker_pieces""#)
        #expect(configuration.redactedSummary.contains("pieces=30s after 120s"))
    }

    @Test func piecesOff() throws {
        let configuration = try configuration([
            "MEDIA_WORKER_PIECE_SECONDS": "0", "MEDIA_WORKER_TABLE_PIECES": "media.pieces",
        ])
        #expect(configuration.pieceSeconds == 0 && configuration.tables.pieces == #""media"."pieces""#)
        #expect(configuration.redactedSummary.contains("pieces=off"))
    }

    @Test func variantsAndByteBudgets() throws {
        let configuration = try configuration([
            "MEDIA_WORKER_EFFICIENT_VARIANT": "always", "MEDIA_WORKER_MAX_BYTES_LOW": "8M",
            "MEDIA_WORKER_MAX_BYTES_MEDIUM": "16777216", "MEDIA_WORKER_MAX_BYTES_HIGH": "1g",
        ])
        #expect(configuration.efficientVariant == .always)
        #expect(configuration.maxBytes == [.low: 8 << 20, .medium: 16 << 20, .high: 1 << 30])
        #expect(configuration.redactedSummary.contains("maxBytes=HIGH:1073741824,LOW:8388608,MEDIUM:16777216"))
    }

    @Test(arguments: [
        ("MEDIA_WORKER_FAST_SLOTS", "0", "a whole number ≥ 1"),
        ("MEDIA_WORKER_CONCURRENCY", "two", "a whole number ≥ 1"),
        ("MEDIA_WORKER_MAX_SLOTS_PER_UPLOADER", "-1", "a whole number ≥ 0"),
        ("MEDIA_WORKER_SANDBOX", "some", "full or partial (partial is dangerous)"),
        ("MEDIA_WORKER_POOL_MODE", "statement", "session or transaction"), ("MEDIA_WORKER_REUSE", "maybe", "on or off"),
        ("MEDIA_WORKER_STALE_AFTER", "-5", "a number of seconds ≥ 0"),
        ("MEDIA_WORKER_EFFICIENT_VARIANT", "hevc", "free, always or off"),
        ("MEDIA_WORKER_MAX_BYTES_MEDIUM", "12X", "a size of at least 64K, e.g. 16M"),
        ("MEDIA_WORKER_MAX_BYTES_LOW", "1K", "a size of at least 64K, e.g. 16M"),
        ("MEDIA_WORKER_PIECE_SECONDS", "-30", "a number of seconds ≥ 0"),
    ])
    func refusesMalformedSettings(_ name: String, _ value: String, _ expected: String) {
        #expect(throws: ConfigurationError.invalid(name, value, expected)) { try configuration([name: value]) }
    }

    @Test func transactionPoolingPollsEverySecondWithoutListening() throws {
        let pooled = try configuration(["MEDIA_WORKER_POOL_MODE": "transaction"])
        #expect(pooled.pollInterval == 1)
        #expect(pooled.connectionBudget == (pool: 4, listener: false, locks: false))
        let listening = try configuration([
            "MEDIA_WORKER_POOL_MODE": "transaction", "MEDIA_WORKER_LISTEN_URL": "postgresql://db/app",
        ])
        #expect(listening.pollInterval == 5 && listening.connectionBudget == (pool: 3, listener: true, locks: false))
    }

    /// One connection to LISTEN, one for the reuse locks, the rest shared; too few is refused with
    /// what is needed.
    @Test func connectionBudget() throws {
        #expect(try configuration().connectionBudget == (pool: 2, listener: true, locks: true))
        #expect(
            try configuration(["MEDIA_WORKER_REUSE": "off"]).connectionBudget == (pool: 3, listener: true, locks: false)
        )
        #expect(
            throws: ConfigurationError.invalid(
                "MEDIA_WORKER_MAX_CONNECTIONS", "2",
                "at least 3 here (one to LISTEN, one for the reuse locks, one to share)")
        ) {
            try configuration(["MEDIA_WORKER_MAX_CONNECTIONS": "2"]).validateConnectionBudget()
        }
    }

    /// The summary logged at start shows the settings, never the password.
    @Test func summaryIsRedacted() throws {
        let summary = try configuration(["AWS_SECRET_ACCESS_KEY": "TopSecretKey"]).redactedSummary
        #expect(!summary.contains("s3cret") && !summary.contains("TopSecretKey"))
        #expect(summary.contains("app:***@db") && summary.contains("sandbox=full") && summary.contains("fastSlots=1"))
        #expect(try configuration(["AWS_SECRET_ACCESS_KEY": "TopSecretKey"]).secrets.contains("TopSecretKey"))
    }
}

@Suite("Lane rules")
struct LaneRules {
    /// The fast lane takes quick work only; both lanes share the uploader cap and the pauses.
    @Test func claimRulesFollowTheLane() throws {
        let configuration = try Configuration(
            environment: ConfigurationRules.required.merging(["MEDIA_WORKER_MAX_SLOTS_PER_UPLOADER": "3"]) { $1 })
        #expect(
            Lane.fast.claimRules(configuration, hasPausedTable: true)
                == JobStore.ClaimRules(quickOnly: true, maxSlotsPerUploader: 3, hasPausedTable: true))
        #expect(
            Lane.encode.claimRules(configuration, hasPausedTable: false)
                == JobStore.ClaimRules(quickOnly: false, maxSlotsPerUploader: 3, hasPausedTable: false))
        #expect(Lane.encode.slots(configuration) == configuration.concurrency && Lane.fast.slots(configuration) == 1)
    }

    /// A lone job gets every core; jobs running together share them, two at least each.
    @Test(arguments: [(1, 16, 16), (2, 16, 8), (8, 16, 2), (12, 16, 2), (1, 2, 2), (0, 4, 4)])
    func threadsShareTheCores(_ running: Int, _ cores: Int, _ threads: Int) {
        #expect(Lane.threads(running: running, cores: cores) == threads)
    }
}

@Suite("Service state rules")
struct ServiceStateRules {
    @Test func slotsAreCountedPerLane() {
        let state = ServiceState()
        let encode = state.started(in: .encode)
        _ = state.started(in: .fast)
        _ = state.started(in: .encode)
        #expect(state.running == 3 && state.running(in: .encode) == 2 && state.running(in: .fast) == 1)
        state.finished(encode, ending: .completed)
        #expect(state.running(in: .encode) == 1 && state.endings == [.completed: 1])
        #expect(state.statusLine.hasPrefix("2 running, 1 done (1 completed, 0 failed, 0 to retry, 0 first looks)"))
    }

    /// Not ready before start-up checks pass and once a stop begins; live while the database
    /// answered within the window, or while starting or stopping.
    @Test func healthFollowsStartUpPollsAndStops() {
        let state = ServiceState()
        #expect(
            state.health(window: .seconds(60))
                == Health(live: true, ready: false, detail: "starting: waiting for the database and storage"))
        state.becameReady()
        #expect(!state.health(window: .seconds(60)).live)
        state.polled()
        #expect(state.health(window: .seconds(60)) == Health(live: true, ready: true, detail: "ok: 0 jobs running"))
        state.databaseFailed("connection refused")
        state.drain()
        let stopping = state.health(window: .seconds(60))
        #expect(stopping.live && !stopping.ready && state.statusLine.hasPrefix("stopping: "))
        #expect(state.statusLine.contains("database: connection refused"))
    }

    @Test func watchdogPingsAtMostOncePerInterval() {
        let state = ServiceState()
        let start = ContinuousClock.now
        #expect(state.watchdogDue(now: start, interval: .seconds(30)))
        #expect(!state.watchdogDue(now: start + .seconds(10), interval: .seconds(30)))
        #expect(state.watchdogDue(now: start + .seconds(30), interval: .seconds(30)))
    }
}
