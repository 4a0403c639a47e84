import ArgumentParser
import JobChild
import Logging
import Observability
import Pages
import Prometheus
import ServiceLifecycle
import Worker

/// `media-worker serve`: the daemon.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the worker: claim jobs from the VideoProcessing table and process them until stopped.",
        discussion: """
            Waits until the database answers and the storage can be written (saying what is wrong \
            meanwhile), then wakes on NOTIFY media_worker_jobs and polls every --poll-interval seconds. \
            SIGTERM or SIGINT stop claiming, give running jobs --shutdown-grace seconds, then stop them \
            and put them back to PENDING without counting an attempt.

            Under systemd (Type=notify) it sends READY=1, STATUS=, WATCHDOG=1 while healthy and \
            STOPPING=1. With --metrics-addr it serves /metrics (Prometheus), /status (a page of the \
            queue), /healthz and /readyz.

            Behind PgBouncer (or RDS Proxy, Supavisor) in transaction mode set \
            MEDIA_WORKER_POOL_MODE=transaction: it then polls every second, or LISTENs on \
            MEDIA_WORKER_LISTEN_URL, a direct connection. It holds at most MEDIA_WORKER_MAX_CONNECTIONS \
            (4) connections, and every statement runs under MEDIA_WORKER_STATEMENT_TIMEOUT (30 s) and \
            MEDIA_WORKER_LOCK_TIMEOUT (5 s).
            """
    )

    @OptionGroup var options: DaemonOptions

    @Flag(
        name: .customLong("until-idle"),
        help: "Exit once no job is pending or running; fail at once if the database or storage cannot be used.")
    var untilIdle = false

    func run() async throws {
        // The environment holds the database password and S3 secret; job children run as the
        // same user and must not read it from /proc.
        _ = Sandbox.protectDaemon()
        let configuration = try options.configuration()
        let logger = options.makeLogger(label: "media-worker", configuration: configuration)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        var metrics = WorkerMetrics()
        var registry: PrometheusCollectorRegistry?
        if configuration.metricsAddress != nil { (metrics, registry) = WorkerMetrics.prometheus() }
        let worker = WorkerService(
            configuration: configuration, storage: try configuration.makeStorage(), logger: logger,
            untilIdle: untilIdle, metrics: metrics, notifier: SystemdNotifier())
        if let address = configuration.metricsAddress, let registry {
            do {
                let queue = QueueStatusSource(configuration: configuration, database: worker.database)
                let server = try StatusServer(
                    address: address, registry: registry, logger: logger,
                    status: StatusServer.QueuePage(html: StatusPage.html, json: { await queue.json() })
                ) { worker.health() }
                // First in the list, so it stops last: metrics stay readable while jobs drain.
                services.append(.init(service: server, successTerminationBehavior: .gracefullyShutdownGroup))
            } catch {
                throw ValidationError("\(error)")
            }
        }
        services.append(.init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
