import ArgumentParser
import Foundation
import Logging
import Observability
import Worker

/// The database, for every command that uses it: DATABASE_URL, or the flag, which wins.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: "libpq connection string or URI (DATABASE_URL).")
    var databaseURL: String?

    /// `configuration` with the flag applied.
    func apply(to configuration: inout Configuration) {
        if let databaseURL { configuration.databaseURL = databaseURL }
    }
}

/// Settings shared by the commands that use the database and storage: each environment variable
/// can also be given as a flag, which wins.
struct DaemonOptions: ParsableArguments {
    @OptionGroup var database: DatabaseOptions

    @Option(
        name: .customLong("storage-url"),
        help: "file:///dir or s3://bucket/prefix?endpoint=…&region=…&pathStyle=… (MEDIA_STORAGE_URL).")
    var storageURL: String?

    @Option(name: .customLong("public-url"), help: "Base URL of stored outputs (MEDIA_PUBLIC_URL).")
    var publicURL: String?

    @Option(help: "Encode slots: jobs at once on this host (MEDIA_WORKER_CONCURRENCY; default: one per two cores).")
    var concurrency: Int?

    @Option(
        name: .customLong("fast-slots"),
        help: "Fast-lane slots for quick work beside the encode slots (MEDIA_WORKER_FAST_SLOTS; 1).")
    var fastSlots: Int?

    @Option(
        name: .customLong("poll-interval"),
        help: "Seconds between polls (MEDIA_WORKER_POLL_INTERVAL; 5, or 1 in transaction pool mode).")
    var pollInterval: Double?

    @Option(
        name: .customLong("stale-after"),
        help: "Seconds without heartbeat before rescue (MEDIA_WORKER_STALE_AFTER; 60).")
    var staleAfter: Double?

    @Option(name: .customLong("max-attempts"), help: "Attempts before FAILED (MEDIA_WORKER_MAX_ATTEMPTS; 3).")
    var maxAttempts: Int?

    @Option(
        name: .customLong("retry-base"), help: "Seconds before the first retry, doubling (MEDIA_WORKER_RETRY_BASE; 30)."
    )
    var retryBase: Double?

    @Option(name: .customLong("shutdown-grace"), help: "Seconds jobs get on SIGTERM (MEDIA_WORKER_SHUTDOWN_GRACE; 30).")
    var shutdownGrace: Double?

    @Option(name: .customLong("job-timeout"), help: "Wall-clock seconds per job (MEDIA_WORKER_JOB_TIMEOUT; 3600).")
    var jobTimeout: Double?

    @Option(
        name: .customLong("metrics-addr"),
        help: "host:port for /metrics, /healthz and /readyz (MEDIA_WORKER_METRICS_ADDR; off when unset).")
    var metricsAddress: String?

    @Flag(name: .shortAndLong, help: "Log debug detail (same as MEDIA_WORKER_LOG_LEVEL=debug).")
    var verbose = false

    @Option(name: .customLong("log-format"), help: "logfmt or json (MEDIA_WORKER_LOG_FORMAT; logfmt).")
    var logFormat: LogFormat?

    func validate() throws {
        for (name, value) in [
            ("--concurrency", concurrency), ("--fast-slots", fastSlots), ("--max-attempts", maxAttempts),
        ] {
            if let value, value < 1 { throw ValidationError("\(name) must be at least 1") }
        }
        for (name, value) in [
            ("--poll-interval", pollInterval), ("--stale-after", staleAfter), ("--retry-base", retryBase),
            ("--shutdown-grace", shutdownGrace), ("--job-timeout", jobTimeout),
        ] {
            if let value, value < 0 { throw ValidationError("\(name) must not be negative") }
        }
    }

    /// The environment, overridden by flags, validated.
    func configuration() throws -> Configuration {
        var configuration = try Configuration()
        database.apply(to: &configuration)
        if let storageURL { configuration.storageURL = storageURL }
        if let publicURL { configuration.publicURL = publicURL }
        if let concurrency { configuration.concurrency = concurrency }
        if let fastSlots { configuration.fastSlots = fastSlots }
        if let pollInterval { configuration.pollInterval = pollInterval }
        if let staleAfter { configuration.staleAfter = staleAfter }
        if let maxAttempts { configuration.maxAttempts = maxAttempts }
        if let retryBase { configuration.retryBase = retryBase }
        if let shutdownGrace { configuration.shutdownGrace = shutdownGrace }
        if let jobTimeout { configuration.jobTimeout = jobTimeout }
        if let metricsAddress { configuration.metricsAddress = metricsAddress }
        do {
            try configuration.validate()
        } catch {
            throw ValidationError("\(error)")
        }
        return configuration
    }

    /// A logger on stderr at MEDIA_WORKER_LOG_LEVEL (info by default, debug with --verbose) that
    /// masks the configuration's secrets.
    func makeLogger(label: String, configuration: Configuration) -> Logger {
        makeStandardErrorLogger(
            label: label, verbose: verbose, defaultLevel: .info, format: logFormat, secrets: configuration.secrets)
    }
}
